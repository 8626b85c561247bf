"""Tests of lab.cli: ``python -m lab`` as a user runs it."""
