"""``python -m lab interpret``: an error line for each run whose files are tampered with, and the other runs
scored."""

from __future__ import annotations

import json
import shutil

import torch

from lab.runs import contents
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.training.loop import train_run
from tests.conftest import run_cli
from tests.lab.runs.planting import TINY, rewrite


def test_interpret_gives_each_tampered_run_its_error_line_and_scores_the_others(tmp_path):
    store = RunStore(tmp_path)
    good = train_run(RunConfig(experiment="exp", **TINY), store)
    for name in ("three-channels", "nan-weights"):
        shutil.copytree(good.run_dir, tmp_path / name)
    tensors = store.load_features("three-channels").to_tensors()
    tensors["snapshot_images"] = tensors["snapshot_images"].expand(-1, 3, -1, -1)
    rewrite(store, "three-channels", contents.FEATURES, tensors)
    weights = store.load_weights("nan-weights")
    weights["head.classifier.weight"] = torch.full_like(weights["head.classifier.weight"], float("nan"))
    rewrite(store, "nan-weights", contents.WEIGHTS, weights)
    result = run_cli("interpret", "--experiment", "exp", "--images", "2", "--runs-dir", str(tmp_path), timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, result.stderr
    assert any(e.startswith("error: run three-channels: features.safetensors: snapshot_images") for e in errors)
    assert any(
        e.startswith("error: run nan-weights: weights.safetensors: head.classifier.weight holds") for e in errors
    )
    assert [json.loads(line)["run_id"] for line in result.stdout.splitlines()] == [good.run_id]
