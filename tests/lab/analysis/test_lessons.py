"""Each loss's lesson checked on an experiment: the figures it promises to move against softmax, the paired
test over seeds with Holm's correction, and the verdict in words; and the shipped examples checked so."""

from __future__ import annotations

import numpy as np
import pytest

import losses
from lab.analysis import geometry
from lab.analysis.lessons import NOT_DISTINGUISHABLE, ONE_SEED, OPPOSITE, SHOWN, check_lessons
from lab.analysis.seed_stats import METRICS, SEED_METRICS, RunResult, summarize, summarize_experiment
from lab.runs.store import RunStore
from tests.conftest import ROOT

EXAMPLES = ROOT / "assets" / "example-runs"


def _results(variant: str, loss: str, figures_by_seed: dict[int, dict[str, float]]) -> list[RunResult]:
    filled = {metric: 0.5 for metric in METRICS}
    return [
        RunResult(f"{loss}-{seed}", variant, loss, {}, seed, "finished", "", {**filled, **figures})
        for seed, figures in figures_by_seed.items()
    ]


def _checks(softmax: dict[int, dict[str, float]], other: dict[int, dict[str, float]], loss: str = "amc"):
    results = _results("Softmax", "softmax", softmax) + _results("Other", loss, other)
    return {c.expected.figure: c for c in check_lessons(summarize(results))}


def test_every_promised_figure_is_a_figure_of_the_summary():
    for name in losses.names():
        for expected in losses.get(name).expected:
            assert expected.figure in SEED_METRICS, (name, expected)
            assert expected.direction in ("lower", "higher")


def test_a_clear_difference_in_the_promised_direction_is_shown():
    softmax = {s: {"mean_within_class_angle": 8.0 + 0.1 * s, "share_beyond_margin": 0.70} for s in range(5)}
    amc = {s: {"mean_within_class_angle": 6.0 + 0.12 * s, "share_beyond_margin": 0.70 + 0.01 * s} for s in range(5)}
    checks = _checks(softmax, amc)
    assert checks["mean_within_class_angle"].verdict == SHOWN
    assert "as the lesson says" in checks["mean_within_class_angle"].sentence()
    assert (
        "mean within-class angle 6.2° against Softmax's 8.2° (5 seeds)" in checks["mean_within_class_angle"].sentence()
    )


def test_the_opposite_of_the_promise_is_said_as_such():
    softmax = {s: {"mean_within_class_angle": 6.0 + 0.1 * s} for s in range(5)}
    amc = {s: {"mean_within_class_angle": 9.0 + 0.12 * s} for s in range(5)}
    check = _checks(softmax, amc)["mean_within_class_angle"]
    assert check.verdict == OPPOSITE
    assert "the opposite of the lesson" in check.sentence()


def test_seed_noise_is_not_distinguishable_and_one_seed_cannot_tell():
    rng = np.random.default_rng(0)
    softmax = {s: {"mean_within_class_angle": float(7 + rng.normal())} for s in range(3)}
    amc = {s: {"mean_within_class_angle": float(7 + rng.normal())} for s in range(3)}
    assert _checks(softmax, amc)["mean_within_class_angle"].verdict == NOT_DISTINGUISHABLE
    one = _checks({0: {"mean_within_class_angle": 8.0}}, {0: {"mean_within_class_angle": 5.0}})
    assert one["mean_within_class_angle"].verdict == ONE_SEED
    assert "cannot tell" in one["mean_within_class_angle"].sentence()


def test_holm_adjusts_over_the_promises_of_one_loss():
    """Two promises: the smaller p is doubled, the larger kept (and never below the smaller)."""
    rng = np.random.default_rng(1)
    softmax = {s: {"mean_within_class_angle": 8.0, "share_beyond_margin": 0.7} for s in range(4)}
    amc = {
        s: {"mean_within_class_angle": 7.0 + 0.3 * float(rng.normal()), "share_beyond_margin": 0.72 + 0.05 * s}
        for s in range(4)
    }
    checks = _checks(softmax, amc)
    ps = sorted((c.p, c.expected.figure) for c in checks.values())
    assert checks[ps[0][1]].p_adjusted == pytest.approx(min(1.0, 2 * ps[0][0]))
    assert checks[ps[1][1]].p_adjusted == pytest.approx(max(ps[1][0], 2 * ps[0][0]))


def test_without_a_softmax_variant_nothing_is_checked():
    results = _results("AMC", "amc", {0: {}, 1: {}}) + _results("OPL", "opl", {0: {}, 1: {}})
    assert check_lessons(summarize(results)) == []


def test_class_spread_falls_as_classes_tighten_and_move_apart():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    centers = np.array([[0, 0], [3, 0], [0, 3], [3, 3]], dtype=float)
    loose = centers[labels] + rng.normal(size=(200, 2))
    tight = centers[labels] + 0.2 * rng.normal(size=(200, 2))
    assert geometry.class_spread(tight, labels) < 0.2 < geometry.class_spread(loose, labels)
    assert geometry.class_spread(2 * loose, labels) == pytest.approx(geometry.class_spread(loose, labels))


@pytest.mark.parametrize("experiment", ["example-digits-2d", "example-fashion-3d"])
def test_the_shipped_examples_check_every_lesson_over_several_seeds(experiment):
    """The examples carry several seeds for every loss, so each lesson gets a verdict from the seeds
    (never "too few seeds"), whatever that verdict is."""
    summaries = summarize_experiment(RunStore(EXAMPLES), experiment)
    assert all(s.n >= 3 for s in summaries), [(s.variant, s.n) for s in summaries]
    checks = check_lessons(summaries)
    promised = sum(len(losses.get(s.loss).expected) for s in summaries if s.loss != "softmax")
    assert len(checks) == promised > 0
    assert all(c.verdict in (SHOWN, OPPOSITE, NOT_DISTINGUISHABLE) for c in checks)


def test_feature_space_shows_every_lesson_check_of_the_example(tmp_path):
    """The page under the panels: one line per promise, with the verdict's words, over every seed."""
    from tests.apptest import app_reads, open_page, shown

    with app_reads(tmp_path / "runs"):
        app = open_page("pages/features.py", experiment="example-digits-2d")
    checks = check_lessons(summarize_experiment(RunStore(EXAMPLES), "example-digits-2d"))
    expander = next(e for e in app.expander if e.label.startswith("Does each loss do what the Learn page says?"))
    lines = [shown(m.value) for m in expander.markdown]
    for check in checks:
        assert any(check.sentence() in line and check.variant in line for line in lines), check.sentence()


def test_copies_of_examples_no_longer_shipped_are_replaced_and_other_runs_stay(tmp_path):
    """A runs folder seeded by an older release holds example runs under ids no longer shipped: they go, so
    they are not averaged with the new examples; a user's run that only looks like one stays."""
    import json
    import shutil

    from ui import session

    root = tmp_path / "runs"
    root.mkdir()
    shipped = sorted(EXAMPLES.glob("example-digits-2d-*"))[0]
    shutil.copytree(shipped, root / "example-digits-2d-amc")  # an older release's id, same experiment
    mine = root / "example-mine"
    shutil.copytree(shipped, mine)
    config = json.loads((mine / "config.json").read_text())
    (mine / "config.json").write_text(json.dumps({**config, "experiment": "my-own"}))
    session._prepare(root)
    assert not (root / "example-digits-2d-amc").exists()
    assert mine.exists()
    assert {p.name for p in EXAMPLES.iterdir()} <= {p.name for p in root.iterdir()}
    assert not [p for p in root.iterdir() if p.name.startswith(".trash-")]
