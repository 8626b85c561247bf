"""Scoring maps (``scoring.evaluate``) on a model whose decision reads known pixels: object mass only where the
foreground is known, deletion, insertion, confidence and ROAD against a random map, confidence intervals, the
direction of each metric, and the whole evaluation as the CLI prints it."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from lab.interpret import metrics as im
from lab.interpret import scoring
from lab.interpret import statistics as stats
from tests.lab.interpret.cases import SIZE, PatchModel, patch_images, patch_maps, small_cnn

# pytorch-grad-cam's ROAD imputer calls np.argwhere on a torch tensor, which numpy 2 warns about
pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning")


# ---------------------------------------------------------------- object mass


def test_object_mass_is_none_unless_the_foreground_is_known():
    images, maps = patch_images(8), patch_maps(8)
    raw = (images.clamp(0, 1) * 255).to(torch.uint8).numpy()
    unknown = scoring.evaluate(PatchModel(), images, raw, np.zeros(8), maps, metrics=("object_mass",))
    assert unknown == {"object_mass": None}
    known = scoring.evaluate(
        PatchModel(), images, raw, np.zeros(8), maps, foreground_known=True, metrics=("object_mass",)
    )
    assert known["object_mass"].value == pytest.approx(float(im.object_mass(maps, raw).mean()), abs=1e-6)


# ---------------------------------------------------------------- a model that reads known pixels


@pytest.fixture(scope="module")
def patch_case():
    n = 60
    images, maps = patch_images(n), patch_maps(n)
    results = scoring.evaluate(
        PatchModel(),
        images,
        None,
        np.zeros(n, dtype=np.int64),
        maps,
        metrics=("deletion_auc", "insertion_auc", "road", "confidence_drop", "confidence_increase"),
    )
    return results


def test_a_map_on_the_pixels_the_model_reads_beats_a_random_map_in_deletion_and_insertion(patch_case):
    deletion, insertion = patch_case["deletion_auc"], patch_case["insertion_auc"]
    assert deletion.value < deletion.baseline - 0.1  # the prediction falls at the first step
    assert insertion.value > insertion.baseline + 0.1  # and comes back at the first step
    assert deletion.verdict == insertion.verdict == "better"
    assert (deletion.values < deletion.baseline_values).mean() > 0.9
    blurred_level = deletion.baselines["blurred"]
    assert deletion.value == pytest.approx(blurred_level, abs=0.1)  # it sits at the blurred image's level
    assert set(deletion.baselines) == {"random", "gaussian", "blurred"}


def test_multiplying_by_a_map_on_the_read_pixels_keeps_the_prediction(patch_case):
    drop, increase = patch_case["confidence_drop"], patch_case["confidence_increase"]
    assert drop.value == pytest.approx(0.0, abs=1e-6)  # the patch is multiplied by 1, the rest is not read
    assert drop.baseline > 0.01 and drop.verdict == "better"
    assert increase.value == 0.0


def test_road_ranks_a_graded_map_on_the_read_pixels_above_a_random_map():
    n = 40
    images = patch_images(n)
    maps = patch_maps(n) * 0.9 + im.random_maps(n, (SIZE, SIZE), seed=5) * 0.1  # no ties: ROAD's thresholds
    result = scoring.evaluate(PatchModel(), images, None, np.zeros(n), maps, metrics=("road",))["road"]
    assert result.value > result.baseline + 0.05
    assert result.verdict == "better"


def test_a_random_map_is_not_distinguishable_from_another_random_map():
    n = 60
    maps = im.random_maps(n, (SIZE, SIZE), seed=123)
    result = scoring.evaluate(PatchModel(), patch_images(n), None, np.zeros(n), maps, metrics=("deletion_auc",))
    assert result["deletion_auc"].verdict == "not distinguishable"


# ---------------------------------------------------------------- confidence intervals and the direction of each metric


def test_the_ci_contains_the_mean_and_narrows_with_more_images():
    rng = np.random.default_rng(0)
    for values in (rng.normal(0.3, 0.2, 500), rng.uniform(0, 1, 500), (rng.uniform(0, 1, 500) > 0.7) * 1.0):
        few, many = scoring.mean_ci(values[:50]), scoring.mean_ci(values)
        for ci in (few, many):
            assert ci.low <= ci.mean <= ci.high
        assert many.high - many.low < (few.high - few.low) / 2
    assert scoring.mean_ci(np.array([np.nan, 1.0, 3.0])).n == 2
    assert scoring.mean_ci(np.array([np.nan])) == scoring.Interval(None, None, None, 0)


def test_the_direction_table_in_the_docstring_matches_the_sentences():
    table = {}
    for line in scoring.__doc__.splitlines():
        row = re.match(r"``(\w+)``.*\s(lower|higher)$", line.strip())
        if row:
            table[row[1]] = row[2] == "higher"
    assert table == {name: spec.higher_is_better for name, spec in scoring.METRICS.items()}
    assert set(scoring.REPORTED) <= set(scoring.METRICS)
    for spec in scoring.METRICS.values():
        for template in (spec.more, spec.less):
            assert all(part in template for part in ("{a}", "{b}", "{m}", "{on}")), template


# ---------------------------------------------------------------- the whole evaluation


def test_evaluate_reports_progress_leaves_the_model_alone_and_prints_the_cli_json():
    model = small_cnn(classes=2)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images, maps = patch_images(10)[:, :, :10, :10], im.random_maps(10, (10, 10), seed=9)
    seen: list[tuple[float, str]] = []
    results = scoring.evaluate(
        model, images, None, np.zeros(10), maps, cam_shape=(5, 5), progress=lambda f, t: seen.append((f, t))
    )
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) > 5
    assert model.training and all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    raw = {name: r.tests["random"].p for name, r in results.items() if r is not None}
    assert {name: r.p_adjusted for name, r in results.items() if r is not None} == stats.holm(raw)
    printed = scoring.to_json(results)
    assert list(printed) == list(scoring.REPORTED)
    assert printed["object_mass"] is None and printed["randomization_similarity"] is None
    assert set(printed["road"]) == {"value", "ci_low", "ci_high", "baseline", "verdict", "p", "p_adjusted", "against"}
    assert printed["road"]["verdict"] in ("better", "worse", "not distinguishable")
    assert set(printed["road"]["against"]) == {"random", "gaussian"}
    with pytest.raises(ValueError, match="unknown metrics"):
        scoring.evaluate(model, images, None, np.zeros(10), maps, metrics=("accuracy",))
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        scoring.evaluate(model, images, None, np.zeros(10), maps * 2, metrics=("road",))
