"""Tests of lab.cli.commands, one module per command."""
