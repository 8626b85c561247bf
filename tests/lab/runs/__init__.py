"""Tests of lab.runs."""
