"""Tests of lab.analysis."""
