"""``python -m lab preset``: the list of presets as JSON lines, and an unknown name as one error line."""

from __future__ import annotations

import json

from lab.settings import presets
from tests.conftest import run_cli


def test_preset_list_prints_one_line_per_preset_and_an_unknown_name_is_an_error():
    listed = run_cli("preset", "--list", timeout=300)
    assert listed.returncode == 0, listed.stderr
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [line["name"] for line in lines] == presets.names()
    assert all(line["seconds"] > 0 and line["about"] and line["dataset"] for line in lines)
    unknown = run_cli("preset", "nope", timeout=300)
    assert unknown.returncode == 2 and "no preset called 'nope' (choose from: lsoftmax-fig2" in unknown.stderr
