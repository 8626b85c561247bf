"""Tests of lab.figures."""
