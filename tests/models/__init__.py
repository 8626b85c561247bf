"""Tests of the registered models (models/)."""
