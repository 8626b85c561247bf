"""Tests of lab.interpret."""
