"""Tests of the registered losses (losses/)."""
