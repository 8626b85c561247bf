"""Tests of lab.training."""
