"""Experiments as variants x seeds, their summary's statistics, and the papers' presets."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lab import analysis
from lab.runfiles import RunFeatures
from lab.runstore import RunStore
from lab.settings import presets
from lab.settings.config import RunConfig
from lab.settings.errors import ConfigError
from lab.settings.experiment import Variant, make_experiment, parse_seeds, parse_variants, variant_label
from lab.summary import (
    METRICS,
    SEED_METRICS,
    Interval,
    RunResult,
    interval,
    paired_difference,
    summarize,
    summarize_experiment,
    swept_settings,
    t_quantile,
)
from tests.conftest import run_cli, write_idx_dataset
from tests.conftest import summary_result as result

# --- variants ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "label"),
    [
        ("lsoftmax:margin=4", "L-Softmax m=4"),
        ("center:weight=0.001", "Center loss lambda=0.001"),
        ("amc:margin=0.4:weight=0.2", "AMC-Loss margin=0.4 lambda=0.2"),
        ("cosface:margin=0.1:scale=8", "CosFace (AM-Softmax) m=0.1 s=8"),
        ("arcface:margin=0.3", "ArcFace margin=0.3"),  # its help names no symbol first
        ("softmax", "Softmax cross-entropy"),
    ],
)
def test_a_variant_is_labelled_by_its_papers_name_and_its_own_settings(spec, label):
    variant = Variant.parse(spec)
    assert variant.default_label() == label and variant.spec == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lsoftmax:margin", "write a variant as NAME or NAME:key=value"),
        ("lsoftmax:margin=2:margin=3", "sets margin twice"),
        (":margin=2", "a variant starts with a loss name"),
    ],
)
def test_a_malformed_variant_says_how_to_write_one(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_variants(text)


def test_an_experiment_is_every_variant_with_every_seed_seed_by_seed():
    template = RunConfig(epochs=3, experiment="exp")
    configs = make_experiment(
        template,
        ["softmax", "lsoftmax:margin=2", "lsoftmax:margin=4"],
        {"lsoftmax": {"lambda_min": "0", "margin": "3"}},
        seeds=[0, 1],
    )
    assert [(c.seed, c.variant) for c in configs] == [
        (0, "Softmax cross-entropy"),
        (0, "L-Softmax m=2"),
        (0, "L-Softmax m=4"),
        (1, "Softmax cross-entropy"),
        (1, "L-Softmax m=2"),
        (1, "L-Softmax m=4"),
    ]
    # --hparam reaches every variant of its loss; a variant's own setting wins over it
    assert [(c.loss_params["margin"], c.loss_params["lambda_min"]) for c in configs[1:3]] == [(2, 0.0), (4, 0.0)]
    assert {c.experiment for c in configs} == {"exp"} and {c.epochs for c in configs} == {3}
    assert make_experiment(RunConfig(seed=7), ["softmax"])[0].seed == 7, "no seeds: the template's"


@pytest.mark.parametrize(
    ("variants", "seeds", "message"),
    [
        (["lsoftmax:margin=2", "lsoftmax"], None, "lsoftmax named more than once with the same settings"),
        (["softmax"], [0, 1, 0], "seeds: 0 named more than once"),
        (["softmax"], [], "seeds: choose at least one seed"),
        (["lsoftmax:margin=9"], None, "lsoftmax.margin: must be"),
        (["lsoftmax:width=2"], None, "unknown hyperparameter width"),
        ([Variant("softmax", label="A"), Variant("lsoftmax", label="A")], None, "two variants are labelled 'A'"),
        (["softmax"], [-1], "seed: must be an integer from 0"),
    ],
)
def test_an_experiment_refuses_ambiguous_variants_and_seeds(variants, seeds, message):
    with pytest.raises(ConfigError, match=message):
        make_experiment(RunConfig(), variants, seeds=seeds)


def test_seeds_parse_from_a_comma_separated_list():
    assert parse_seeds("0, 1,2") == [0, 1, 2]
    with pytest.raises(ConfigError, match="seeds: 'x' is not a number: .*; write them as 0,1,2"):
        parse_seeds("0,x")


def test_a_run_made_before_variants_is_labelled_by_its_loss():
    assert variant_label(RunConfig(loss="lsoftmax")) == "L-Softmax"
    assert variant_label(RunConfig(loss="lsoftmax", variant="L-Softmax m=4")) == "L-Softmax m=4"


# --- statistics -------------------------------------------------------------------------------------


def test_the_interval_is_students_t_over_the_seeds():
    # mean 0.96, sample std 0.01, t(0.975, 2) = 4.302653: half width 4.302653 * 0.01 / sqrt(3)
    found = interval([0.95, 0.96, 0.97])
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert found.n == 3 and found.mean == pytest.approx(0.96) and found.std == pytest.approx(0.01)
    assert (found.ci_low, found.ci_high) == (pytest.approx(0.96 - half), pytest.approx(0.96 + half))
    assert t_quantile(0.975, 1) == pytest.approx(12.706205) and t_quantile(0.975, 30) == pytest.approx(2.042272)


def test_the_interval_matches_scipy_stats():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 10, 40):
        values = rng.normal(0.9, 0.02, size=n)
        found = interval(list(values))
        low, high = stats.t.interval(0.95, n - 1, loc=values.mean(), scale=stats.sem(values))
        assert (found.ci_low, found.ci_high) == (pytest.approx(low), pytest.approx(high))


def test_one_seed_has_no_interval_and_no_seed_is_an_error():
    assert interval([0.9]) == Interval(1, 0.9, None, None, None)
    with pytest.raises(ValueError):
        interval([])


def test_the_paired_difference_uses_only_the_seeds_both_have():
    difference, seeds = paired_difference({0: 0.95, 1: 0.97, 2: 0.96, 5: 0.5}, {0: 0.94, 1: 0.95, 2: 0.95})
    assert seeds == [0, 1, 2]
    expected = interval([0.01, 0.02, 0.01])
    assert (difference.mean, difference.ci_low) == (pytest.approx(expected.mean), pytest.approx(expected.ci_low))
    assert paired_difference({3: 1.0}, {0: 1.0}) == (None, [])


def test_intervals_stay_inside_the_figures_range_near_its_bounds():
    angles = interval([0.1, 0.2, 3.0], bounds=(0.0, 180.0))  # the plain t interval is [-3.1, 5.3]: no angle is negative
    assert angles.mean == pytest.approx(1.1) and 0.0 < angles.ci_low < angles.mean < angles.ci_high <= 180.0
    accuracy = interval([0.97, 0.999, 1.0], bounds=(0.0, 1.0))  # plain t: up to 103.5%
    assert 0.0 <= accuracy.ci_low < accuracy.mean < accuracy.ci_high <= 1.0
    two_seeds = interval([0.05, 0.95], bounds=(0.0, 1.0))  # t(0.975, 1) = 12.7: plain t spans -5.2 to 6.2
    assert 0.0 <= two_seeds.ci_low < 0.5 < two_seeds.ci_high <= 1.0
    assert interval([1.0, 1.0, 1.0], bounds=(0.0, 1.0)) == Interval(3, 1.0, 0.0, 1.0, 1.0)
    one_sided = interval([0.01, 0.02, 2.0], bounds=(0.0, None))
    assert 0.0 < one_sided.ci_low < one_sided.mean < one_sided.ci_high
    with pytest.raises(ValueError, match="outside the figure's range"):
        interval([0.5, 1.2], bounds=(0.0, 1.0))


def test_a_bounded_interval_is_the_t_interval_away_from_the_bounds():
    values = [0.50, 0.51, 0.52]  # half way between 0 and 100%
    bounded, plain = interval(values, bounds=(0.0, 1.0)), interval(values)
    assert bounded.mean == plain.mean and bounded.std == plain.std
    assert (bounded.ci_low, bounded.ci_high) == (
        pytest.approx(plain.ci_low, abs=1e-4),
        pytest.approx(plain.ci_high, abs=1e-4),
    )
    near = interval([0.95, 0.96, 0.97], bounds=(0.0, 1.0))
    assert near.ci_high - near.mean < near.mean - near.ci_low, "narrower on the side of the bound at 100%"


def test_a_paired_difference_keeps_its_sign_inside_the_range_of_a_difference():
    worse, _ = paired_difference({0: 0.90, 1: 0.91, 2: 0.92}, {0: 0.92, 1: 0.94, 2: 0.945}, bounds=(0.0, 1.0))
    assert worse.mean == pytest.approx(-0.025) and -1.0 < worse.ci_low < worse.ci_high < 0.0
    wild, _ = paired_difference({0: 0.1, 1: 0.9}, {0: 0.5, 1: 0.2}, bounds=(0.0, 1.0))  # differences -0.4, +0.7
    assert -1.0 <= wild.ci_low < 0.0 < wild.ci_high <= 1.0, "plain t: -6.8 to +7.1, beyond +-100 points"


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


def test_the_swept_hyperparameter_is_the_one_that_differs_between_variants_of_a_loss():
    results = [
        result("S", 0, 0.9),
        result("L2", 0, 0.9, loss="lsoftmax", params={"margin": 2, "base": 1000.0}),
        result("L4", 0, 0.9, loss="lsoftmax", params={"margin": 4, "base": 1000.0}),
    ]
    assert swept_settings(summarize(results)) == ["margin"]


# --- the summary of stored runs ---------------------------------------------------------------------


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
    expected = analysis.class_angles(features.test_features.numpy(), features.test_labels.numpy(), 3)
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


def test_the_summary_of_an_unknown_experiment_is_one_error_line(tmp_path):
    printed = run_cli("summary", "nope", "--runs-dir", str(tmp_path), timeout=300)
    assert printed.returncode == 2 and printed.stderr.startswith("error: experiment 'nope' not found")


# --- presets ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", presets.names())
def test_every_preset_builds_its_runs_and_says_what_to_look_for(name):
    preset = presets.get(name)
    configs = preset.configs()
    assert len(configs) == preset.n_runs and len({c.experiment for c in configs}) == 1
    assert name in configs[0].experiment
    assert {c.seed for c in configs} == set(preset.seeds)
    assert preset.title and preset.showed and preset.look_for and "Look for:" in preset.sentence()
    assert 0 < preset.seconds <= 600 and preset.measured, "measured, and a few minutes at most"


def test_the_presets_are_the_papers_experiments():
    assert presets.names() == [
        "lsoftmax-fig2",
        "center-lambda",
        "amc-gradcam",
        "opl-vs-ce",
        "lmd-vs-softmax",
        "face-margins",
    ]
    fig2 = presets.get("lsoftmax-fig2").configs()
    assert [c.loss_params["margin"] for c in fig2] == [1, 2, 3, 4] and {c.feat_dim for c in fig2} == {2}
    center = presets.get("center-lambda").configs()
    assert [c.loss_params["weight"] for c in center] == [0.0001, 0.001, 0.01, 0.1]
    assert {c.loss_params["alpha"] for c in center} == {0.5}
    faces = presets.get("face-margins").configs()
    assert {c.loss for c in faces} == {"softmax", "sphereface", "cosface", "arcface"} and {
        c.feat_dim for c in faces
    } == {3}
    for name, losses in (("amc-gradcam", {"softmax", "amc"}), ("opl-vs-ce", {"softmax", "opl"})):
        configs = presets.get(name).configs()
        assert {c.loss for c in configs} == losses and {c.seed for c in configs} == {0, 1, 2}
    assert {c.loss for c in presets.get("lmd-vs-softmax").configs()} == {"softmax", "lmd"}


def test_a_preset_falls_back_from_mnist_to_fashion_mnist_to_digits_with_a_note(tmp_path, monkeypatch):
    fig2 = presets.get("lsoftmax-fig2")
    monkeypatch.setenv("LOSSLENS_DATA_DIR", str(tmp_path / "data"))
    empty = tmp_path / "empty"
    empty.mkdir()
    dataset, note = fig2.choose_dataset(str(empty))
    assert dataset == "digits" and "8x8 digits" in note
    fashion = tmp_path / "fashion"
    write_idx_dataset(fashion)
    # a data root holding IDX files counts for MNIST first: the files say nothing of which set they are
    assert fig2.choose_dataset(str(fashion)) == ("mnist", "")
    amc = presets.get("amc-gradcam")
    dataset, note = amc.choose_dataset(str(empty))
    assert dataset == "mnist" and "will try to download" in note, "no 8x8 stand-in for a 28x28 preset"


def test_preset_list_prints_one_line_per_preset_and_an_unknown_name_is_an_error():
    listed = run_cli("preset", "--list", timeout=300)
    assert listed.returncode == 0, listed.stderr
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [line["name"] for line in lines] == presets.names()
    assert all(line["seconds"] > 0 and line["about"] and line["dataset"] for line in lines)
    unknown = run_cli("preset", "nope", timeout=300)
    assert unknown.returncode == 2 and "no preset called 'nope' (choose from: lsoftmax-fig2" in unknown.stderr
