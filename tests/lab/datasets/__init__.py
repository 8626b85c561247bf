"""Tests of lab.datasets."""
