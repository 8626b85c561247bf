"""``python -m lab summary``: one JSON line per variant, and one error line for what it cannot summarize."""

from __future__ import annotations

import json

import torch

from lab.cli.main import main
from lab.runs import contents
from lab.runs.store import RunStore
from tests.conftest import run_cli
from tests.lab.runs.planting import DIM, N, features, plant, rewrite


def test_the_summary_of_an_unknown_experiment_is_one_error_line(tmp_path):
    printed = run_cli("summary", "nope", "--runs-dir", str(tmp_path), timeout=300)
    assert printed.returncode == 2 and printed.stderr.startswith("error: experiment 'nope' not found")


def test_the_summary_leaves_out_tampered_runs_by_name_and_prints_only_json(tmp_path, capsys):
    store = RunStore(tmp_path)
    good = [plant(store, seed=seed) for seed in range(2)]
    nan, wider = plant(store, seed=2), plant(store, seed=3)
    rewrite(store, nan, contents.FEATURES, {**features(2), "test_features": torch.full((N, DIM), float("nan"))})
    eleven = {"test_logits": torch.randn(N, 11), "class_directions": torch.randn(11, DIM)}
    rewrite(store, wider, contents.FEATURES, {**features(3), **eleven})
    assert main(["summary", "exp", "--runs-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()

    def no_nan(value: str) -> None:
        raise AssertionError(f"{value} is not JSON")

    line = json.loads(captured.out, parse_constant=no_nan)
    assert line["n"] == 2 and line["seeds"] == [0, 1] and "Traceback" not in captured.err
    left_out = {entry["run_id"]: entry["message"] for entry in line["left_out"]}
    assert "test_features holds NaN or infinite values" in left_out[nan]
    assert "test_logits has shape (40, 11): dimension 1 should be 10, the classes of digits" in left_out[wider]
    assert set(left_out) == {nan, wider} and not set(good) & set(left_out)
