"""The summary of an experiment over seeds: finished seeds counted once, runs left out by name, figures inside
their ranges, and the figures read from each run's stored features."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lab.analysis import geometry
from lab.analysis.seed_stats import METRICS, SEED_METRICS, RunResult, summarize, summarize_experiment
from lab.runs.store import RunStore
from lab.runs.tensor_files import RunFeatures
from lab.settings.config import RunConfig
from lab.settings.experiment import make_experiment
from tests.conftest import run_cli
from tests.conftest import summary_result as result


def test_the_summary_keeps_every_figure_inside_its_declared_range():
    def run(variant, seed, acc, angle):
        figures = {
            "test_acc": acc,
            "mean_within_class_angle": 2 * angle,
            "min_between_class_angle": angle,
            "share_beyond_margin": acc,
            "class_spread": angle,
        }
        return RunResult(f"{variant}-{seed}", variant, "softmax", {}, seed, "finished", "", figures)

    runs = [run("A", s, a, g) for s, (a, g) in enumerate([(0.99, 0.1), (1.0, 0.2), (0.95, 3.0)])]
    runs += [run("B", s, a, g) for s, (a, g) in enumerate([(0.2, 0.3), (0.9, 2.0), (0.5, 0.1)])]
    ranges = {name: metric.bounds for name, metric in SEED_METRICS.items()}
    for summary in summarize(runs):
        for name, (low, high) in ranges.items():
            high = math.inf if high is None else high
            stats = summary.stats[name]
            assert low <= stats.ci_low < stats.mean < stats.ci_high <= high, (summary.variant, name)
            line = summary.to_json()[name]  # what python -m lab summary prints
            assert low <= line["ci_low"] and line["ci_high"] <= high
    difference = summarize(runs)[1].difference["test_acc"]
    assert -1.0 <= difference.ci_low < 0.0 < difference.ci_high <= 1.0


def test_summarize_counts_finished_seeds_and_names_every_run_left_out():
    results = [
        result("A", 0, 0.90),
        result("B", 0, 0.93),
        result("A", 1, 0.92),
        result("B", 1, 0.94),
        result("B", 2, 0.10, state="diverged"),
        result("A", 2, 0.91, state="stopped"),
        result("B", 1, 0.99),  # the same seed again: not counted twice
    ]
    first, second = summarize(results)
    assert (first.variant, first.n, first.seeds, first.baseline) == ("A", 2, [0, 1], None)
    assert first.stats["test_acc"].mean == pytest.approx(0.91)
    assert [r.state for r in first.left_out] == ["stopped"]
    assert second.n == 2 and second.stats["test_acc"].mean == pytest.approx(0.935)
    assert [(r.seed, r.state) for r in second.left_out] == [(2, "diverged"), (1, "finished")]
    assert second.left_out[1].message == "seed 1 is already counted"
    assert second.baseline == "A" and second.paired_seeds == [0, 1]
    assert second.difference["test_acc"].mean == pytest.approx(0.025)
    line = second.to_json()
    assert line["n"] == 2 and line["runs"] == 4 and set(line["test_acc"]) == {"mean", "std", "ci_low", "ci_high"}
    assert line["vs_baseline"]["variant"] == "A" and line["vs_baseline"]["seeds"] == [0, 1]
    assert [r["status"] for r in line["left_out"]] == ["diverged", "finished"]
    assert any("not averaged in" in note and "diverged" in note for note in line["notes"])


def test_one_seed_gives_null_intervals_and_says_so():
    (only,) = summarize([result("A", 0, 0.9)])
    line = only.to_json()
    assert line["test_acc"] == {"mean": 0.9, "std": None, "ci_low": None, "ci_high": None}
    assert any("one finished seed: no confidence interval" in note for note in line["notes"])
    (nothing,) = summarize([result("A", 0, 0.9, state="failed")])
    assert nothing.n == 0 and nothing.to_json()["test_acc"] is None
    assert "no finished run: nothing to average" in nothing.notes()


def test_the_baseline_can_be_any_variant_but_must_exist():
    first, second = summarize([result("A", 0, 0.9), result("B", 0, 0.8)], baseline="B")
    assert first.baseline == "B" and second.baseline is None
    with pytest.raises(ValueError, match="no variant is labelled 'C'"):
        summarize([result("A", 0, 0.9)], baseline="C")


def store_run(store: RunStore, config: RunConfig, spread: float, state: str = "finished") -> str:
    """A run folder written by the real writer, with 2-D test features around 3 class directions."""
    writer = store.create(config)
    if state == "finished":
        rng = np.random.default_rng(config.seed)
        labels = np.arange(300) % 3
        angles = np.radians(labels * 120.0 + rng.normal(0.0, spread, size=300))
        features = np.stack([np.cos(angles), np.sin(angles)], axis=1) * rng.uniform(1, 3, size=(300, 1))
        logits = features @ np.stack([np.cos(np.radians([0, 120, 240])), np.sin(np.radians([0, 120, 240]))])
        logits = np.concatenate([logits, np.full((300, 7), -10.0)], axis=1)  # digits has 10 classes; 3 are used
        writer.save_features(
            RunFeatures(
                test_features=torch.tensor(features, dtype=torch.float32),
                test_labels=torch.tensor(labels),
                test_logits=torch.tensor(logits, dtype=torch.float32),
                snapshot_indices=torch.arange(10),
                penultimate=torch.zeros(10, 128),  # the default model's width on digits
            )
        )
    writer.set_status(state, message=f"{state} for the test")
    return writer.run_id


def test_summarize_experiment_reads_the_figures_from_each_runs_stored_features(tmp_path):
    store = RunStore(tmp_path)
    configs = make_experiment(RunConfig(experiment="exp"), ["softmax", "center:weight=0.01"], seeds=[0, 1, 2])
    spreads = {"Softmax cross-entropy": 20.0, "Center loss lambda=0.01": 5.0}
    ids = {}
    for config in configs:
        state = "diverged" if (config.loss, config.seed) == ("center", 2) else "finished"
        ids[config.variant, config.seed] = store_run(store, config, spreads[config.variant], state)
    softmax, center = summarize_experiment(store, "exp")
    assert (softmax.variant, softmax.n, center.n) == ("Softmax cross-entropy", 3, 2)
    features = store.load_features(ids["Softmax cross-entropy", 1])
    expected = geometry.class_angles(features.test_features.numpy(), features.test_labels.numpy(), 3)
    assert softmax.values["mean_within_class_angle"][1] == pytest.approx(expected["mean_within_class_angle"])
    assert softmax.values["test_acc"][1] == pytest.approx(
        float((features.test_logits.argmax(1) == features.test_labels).float().mean())
    )
    assert center.stats["mean_within_class_angle"].mean < softmax.stats["mean_within_class_angle"].mean
    assert center.paired_seeds == [0, 1] and [r.run_id for r in center.left_out] == [ids["Center loss lambda=0.01", 2]]
    assert set(softmax.values) == set(METRICS)

    printed = run_cli("summary", "exp", "--runs-dir", str(tmp_path), timeout=300)
    assert printed.returncode == 0, printed.stderr
    lines = [json.loads(line) for line in printed.stdout.splitlines()]
    assert [(line["experiment"], line["variant"], line["n"]) for line in lines] == [
        ("exp", "Softmax cross-entropy", 3),
        ("exp", "Center loss lambda=0.01", 2),
    ]
    assert lines[1]["left_out"][0]["status"] == "diverged" and lines[1]["vs_baseline"]["seeds"] == [0, 1]
