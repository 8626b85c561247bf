"""``python -m lab summary``: one JSON line per variant, and one error line for what it cannot summarize."""

from __future__ import annotations

from tests.conftest import run_cli


def test_the_summary_of_an_unknown_experiment_is_one_error_line(tmp_path):
    printed = run_cli("summary", "nope", "--runs-dir", str(tmp_path), timeout=300)
    assert printed.returncode == 2 and printed.stderr.startswith("error: experiment 'nope' not found")
