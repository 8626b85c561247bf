"""What every command shares: JSON lines on stdout that hold no NaN."""

from __future__ import annotations

import json

from lab.cli.common import print_json


def test_a_number_json_cannot_hold_is_printed_as_null_with_a_warning(capsys):
    print_json({"run_id": "r", "figures": {"angle": float("nan"), "spread": [1.0, float("inf")]}})
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"run_id": "r", "figures": {"angle": None, "spread": [1.0, None]}}
    assert captured.err.splitlines() == [
        "warning: figures.angle is not a finite number; printed as null",
        "warning: figures.spread[1] is not a finite number; printed as null",
    ]
