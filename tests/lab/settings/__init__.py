"""Tests of lab.settings."""
