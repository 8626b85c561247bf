"""Tests of the core, one folder per subpackage of lab/."""
