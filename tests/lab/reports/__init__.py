"""Tests of lab.reports."""
