"""Interpretability metrics on hand-built cases: maps whose right answer is known, models whose decision
reads known pixels, a trained model for the randomization check, and the statistics behind the claims."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.metrics.cam_mult_image import DropInConfidence, IncreaseInConfidence
from pytorch_grad_cam.metrics.perturbation_confidence import (
    PerturbationConfidenceMetric,
    RemoveLeastRelevantFirst,
    RemoveMostRelevantFirst,
)
from pytorch_grad_cam.metrics.road import NoisyLinearImputer
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget
from torch import nn

from lab.interpret import metrics as im
from lab.interpret import road as ir
from lab.interpret import scoring, verdicts
from lab.interpret import statistics as stats

# pytorch-grad-cam's ROAD imputer calls np.argwhere on a torch tensor, which numpy 2 warns about
pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning")

SIZE = 12
PATCH = (slice(4, 7), slice(6, 9))  # the 3x3 pixels the toy model reads


class PatchModel(nn.Module):
    """Two-class logits from a fixed linear read-out of one 3x3 patch: z = 6 * (mean(patch) - 0.5), logits (z, -z)."""

    def __init__(self) -> None:
        super().__init__()
        weight = torch.zeros(SIZE, SIZE)
        weight[PATCH] = 6 / 9
        self.register_buffer("weight", weight)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        z = (images[:, 0] * self.weight).sum((1, 2)) - 3.0
        return torch.stack([z, -z], 1)


def _patch_images(n: int, seed: int = 0) -> torch.Tensor:
    """Noise with a bright patch where the model reads, so class 0 is predicted with confidence."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 0.5, size=(n, 1, SIZE, SIZE)).astype(np.float32)
    images[:, 0, PATCH[0], PATCH[1]] = 1.0 + rng.normal(0.0, 0.1, size=(n, 3, 3))
    return torch.from_numpy(images)


def _patch_maps(n: int) -> np.ndarray:
    maps = np.zeros((n, SIZE, SIZE), np.float32)
    maps[:, PATCH[0], PATCH[1]] = 1.0
    return maps


# ---------------------------------------------------------------- object mass


def test_a_map_exactly_on_the_object_has_object_mass_one_and_a_flat_map_the_foreground_share():
    raw = np.zeros((3, 3, 10, 10), np.uint8)
    raw[:, 0, 2:6, 3:8] = 200  # 20 pixels in the red channel
    raw[:, 2, 8, 8] = 1  # one more pixel, nonzero only in blue
    foreground = im.foreground(raw)
    assert foreground.sum(axis=(1, 2)).tolist() == [21, 21, 21]
    maps = np.stack([foreground[0].astype(np.float32), np.full((10, 10), 0.5, np.float32), np.zeros((10, 10))])
    mass = im.object_mass(maps, raw)
    assert mass[0] == pytest.approx(1.0)
    assert mass[1] == pytest.approx(21 / 100)
    assert np.isnan(mass[2])  # an all-zero map points nowhere


def test_object_mass_is_none_unless_the_foreground_is_known():
    images, maps = _patch_images(8), _patch_maps(8)
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
    images, maps = _patch_images(n), _patch_maps(n)
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
    images = _patch_images(n)
    maps = _patch_maps(n) * 0.9 + im.random_maps(n, (SIZE, SIZE), seed=5) * 0.1  # no ties: ROAD's thresholds
    result = scoring.evaluate(PatchModel(), images, None, np.zeros(n), maps, metrics=("road",))["road"]
    assert result.value > result.baseline + 0.05
    assert result.verdict == "better"


def test_a_random_map_is_not_distinguishable_from_another_random_map():
    n = 60
    maps = im.random_maps(n, (SIZE, SIZE), seed=123)
    result = scoring.evaluate(PatchModel(), _patch_images(n), None, np.zeros(n), maps, metrics=("deletion_auc",))
    assert result["deletion_auc"].verdict == "not distinguishable"


# ---------------------------------------------------------------- agreement with pytorch-grad-cam


@pytest.mark.parametrize("channels, height, width", [(1, 14, 14), (3, 9, 12)])
def test_batched_imputation_solves_the_same_system_as_the_library(channels, height, width):
    torch.manual_seed(0)
    images = torch.randn(5, channels, height, width)
    keep = torch.rand(5, height, width) > torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9])[:, None, None]
    mine = ir.impute(images, keep, noise=0.0)
    library = torch.stack([NoisyLinearImputer(noise=0.0)(images[i], keep[i].float()) for i in range(5)])
    assert torch.allclose(mine, library, atol=5e-3)
    assert torch.equal(mine[keep[:, None].expand_as(mine)], images[keep[:, None].expand_as(images)])


def _small_cnn(classes: int = 3) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, classes)
    ).eval()


def test_road_matches_the_library_classes_without_noise():
    torch.manual_seed(1)
    model, images = _small_cnn(), torch.randn(6, 1, 10, 10)
    maps, targets = im.random_maps(6, (10, 10), seed=2), np.arange(6) % 3
    mine = ir.road(model, images, targets, maps, percentiles=(20, 60), noise=0.0)
    softmax_targets = [ClassifierOutputSoftmaxTarget(int(t)) for t in targets]

    def library(order: type) -> np.ndarray:
        runs = [
            PerturbationConfidenceMetric(order(p, NoisyLinearImputer(noise=0.0)))(images, maps, softmax_targets, model)
            for p in (20, 60)
        ]
        return np.mean(runs, axis=0)

    np.testing.assert_allclose(mine.morf, library(RemoveMostRelevantFirst), atol=1e-4)
    np.testing.assert_allclose(mine.lerf, library(RemoveLeastRelevantFirst), atol=1e-4)
    np.testing.assert_allclose(mine.combined, (mine.lerf - mine.morf) / 2)


def test_confidence_change_is_the_library_drop_and_increase():
    torch.manual_seed(3)
    model, images = _small_cnn(), torch.randn(12, 1, 10, 10)
    maps, targets = im.random_maps(12, (10, 10), seed=4), np.arange(12) % 3
    mine = im.confidence_change(model, images, targets, maps)
    softmax_targets = [ClassifierOutputSoftmaxTarget(int(t)) for t in targets]
    np.testing.assert_allclose(mine.drop, DropInConfidence()(images, maps, softmax_targets, model), atol=1e-6)
    np.testing.assert_array_equal(mine.increase, IncreaseInConfidence()(images, maps, softmax_targets, model))


# ---------------------------------------------------------------- the randomization sanity check


@pytest.fixture(scope="module")
def trained_digits():
    """A tiny CNN trained for 300 steps on scikit-learn's 8x8 digits (about 90% test accuracy)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images[:, None].astype(np.float32) / 16.0)
    labels = torch.from_numpy(digits.target)
    train, test = slice(0, 1500), slice(1500, None)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),  # the CAM layer: 4 x 4
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),  # the top layer the sanity check re-initializes
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        batch = torch.randint(0, 1500, (64,), generator=generator)
        loss = nn.functional.cross_entropy(model(images[train][batch]), labels[train][batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(images[test]).argmax(1) == labels[test]).float().mean().item()
    assert accuracy > 0.8
    return model, images[test][:100], labels[test][:100].numpy(), digits.images[1500:1600]


def _gradcam(images: torch.Tensor, targets: np.ndarray):
    def cam_fn(model: nn.Module) -> np.ndarray:
        with GradCAM(model, [model[4]]) as cam:
            return cam(images, [ClassifierOutputTarget(int(t)) for t in targets])

    return cam_fn


def test_randomizing_the_top_layer_of_a_trained_model_changes_its_gradcam_maps(trained_digits):
    model, images, labels, _ = trained_digits
    before = [p.detach().clone() for p in model.parameters()]
    similarity = im.randomization_similarity(model, _gradcam(images, labels), ["7"], seed=0)
    assert similarity.shape == (len(images),)
    assert float(np.mean(similarity)) < 0.4
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # original untouched


def test_an_explanation_that_ignores_the_model_fails_the_randomization_check(trained_digits):
    model, images, _, _ = trained_digits
    intensity = lambda _model: images[:, 0].numpy()  # noqa: E731  (an edge-detector-like, model-free map)
    assert np.allclose(im.randomization_similarity(model, intensity, ["7"]), 1.0)


def test_evaluate_reports_randomization_similarity_next_to_a_random_map(trained_digits):
    model, images, labels, raw = trained_digits
    cam_fn = _gradcam(images, labels)
    raw = (raw[:, None] * 255 / 16).astype(np.uint8)
    results = scoring.evaluate(
        model,
        images,
        raw,
        labels,
        cam_fn(model),
        foreground_known=True,
        cam_fn=cam_fn,
        top_layers=["7"],
        metrics=("randomization_similarity", "object_mass"),
    )
    check = results["randomization_similarity"]
    assert check.value < 0.4
    assert abs(check.baseline) < 0.1  # a map against a random map
    mass = results["object_mass"]
    assert 0 <= mass.ci_low <= mass.value <= mass.ci_high <= 1
    share = im.foreground(raw).mean()  # a random map lands on the object as often as the object covers the image
    assert mass.baseline == pytest.approx(share, abs=0.05)


def test_randomized_copy_refuses_modules_it_cannot_reinitialize():
    class Bare(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(3))

    model = nn.Sequential(nn.Linear(3, 3), Bare())
    with pytest.raises(ValueError, match="reset_parameters"):
        im.randomized_copy(model, ["1"])
    with pytest.raises(ValueError, match="at least one"):
        im.randomized_copy(model, [])
    copy = im.randomized_copy(model, ["0"], seed=0)
    assert not torch.equal(copy[0].weight, model[0].weight)
    assert torch.equal(im.randomized_copy(model, ["0"], seed=0)[0].weight, copy[0].weight)  # seeded


def test_rank_correlation_of_identical_reversed_and_flat_maps():
    ramp = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    flat = np.zeros((1, 4, 4), np.float32)
    assert im.rank_correlation(ramp, ramp * 2)[0] == pytest.approx(1.0)
    assert im.rank_correlation(ramp, -ramp)[0] == pytest.approx(-1.0)
    assert im.rank_correlation(flat, flat)[0] == 1.0
    assert im.rank_correlation(ramp, flat)[0] == 0.0


# ---------------------------------------------------------------- baselines


def test_baseline_maps_are_seeded_in_range_and_as_coarse_as_asked():
    a = im.random_maps(4, (28, 28), cam_shape=(7, 7), seed=0)
    assert a.shape == (4, 28, 28) and a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, im.random_maps(4, (28, 28), cam_shape=(7, 7), seed=0))
    assert not np.array_equal(a, im.random_maps(4, (28, 28), cam_shape=(7, 7), seed=1))
    fine = im.random_maps(4, (28, 28), seed=0)
    assert np.abs(np.diff(a, axis=2)).mean() < np.abs(np.diff(fine, axis=2)).mean() / 2
    gauss = im.gaussian_map((9, 9))
    assert gauss[4, 4] == 1.0 and gauss.argmax() == 40 and np.allclose(gauss, gauss.T)


def test_a_flat_map_deletes_pixels_in_a_random_order_not_the_top_rows_first():
    ranks = im.relevance_ranks(np.zeros((1, 12, 12), np.float32), seed=0).reshape(12, 12)
    first_step = ranks < 18
    assert first_step[6:].sum() > 3  # raster order would have taken the first one and a half rows


def test_blurred_reference_keeps_the_mean_and_removes_detail():
    images = _patch_images(4)
    reference = im.blurred(images)
    assert reference.shape == images.shape
    assert reference.std() < images.std() / 2
    assert torch.allclose(reference.mean((2, 3)), images.mean((2, 3)), atol=0.1)


# ---------------------------------------------------------------- statistics, comparisons, sentences


def test_the_ci_contains_the_mean_and_narrows_with_more_images():
    rng = np.random.default_rng(0)
    for values in (rng.normal(0.3, 0.2, 500), rng.uniform(0, 1, 500), (rng.uniform(0, 1, 500) > 0.7) * 1.0):
        few, many = scoring.mean_ci(values[:50]), scoring.mean_ci(values)
        for ci in (few, many):
            assert ci.low <= ci.mean <= ci.high
        assert many.high - many.low < (few.high - few.low) / 2
    assert scoring.mean_ci(np.array([np.nan, 1.0, 3.0])).n == 2
    assert scoring.mean_ci(np.array([np.nan])) == scoring.Interval(None, None, None, 0)


def _result(name: str, values: np.ndarray) -> scoring.MetricResult:
    return scoring.summarize(name, values, {"random": np.full(len(values), 0.3)})


def test_identical_inputs_give_no_significant_difference():
    values = np.random.default_rng(1).uniform(0, 1, 500)
    comparison = scoring.compare(_result("object_mass", values), _result("object_mass", values.copy()))
    assert not comparison.significant and comparison.better is None
    text = verdicts.sentence(comparison, "AMC", "softmax")
    assert text.startswith("No significant difference in object mass between AMC and softmax on these 500 images")


def test_a_real_difference_reads_as_a_sentence_with_its_number_and_direction():
    rng = np.random.default_rng(2)
    softmax = rng.uniform(0.3, 0.7, 500)
    amc = np.clip(softmax + 0.12 + rng.normal(0, 0.3, 500), 0, 1)
    comparison = scoring.compare(_result("object_mass", amc), _result("object_mass", softmax))
    assert comparison.significant and comparison.better
    text = verdicts.sentence(comparison, "AMC", "softmax")
    assert text.startswith("AMC puts ") and text.endswith(
        "% more of the map on the object than softmax on these 500 images (better; Holm-adjusted p < 0.001)."
    )
    shown = float(text.split()[2])
    assert shown == pytest.approx(comparison.difference * 100, abs=1)
    # lower is better for deletion: the same improvement in the other direction is "better"
    worse = scoring.compare(_result("deletion_auc", amc), _result("deletion_auc", softmax))
    assert worse.better is False and "(worse; Holm-adjusted p" in verdicts.sentence(worse, "AMC", "softmax")


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
    model = _small_cnn(classes=2)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images, maps = _patch_images(10)[:, :, :10, :10], im.random_maps(10, (10, 10), seed=9)
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


# ---------------------------------------------------------------- tests, Holm-Bonferroni and verdicts


def test_holm_adjusts_known_p_values():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, then made non-decreasing: 0.02, 0.03, 0.06, 0.06
    adjusted = stats.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005, "untested": None})
    assert adjusted["untested"] is None
    assert {k: v for k, v in adjusted.items() if v is not None} == pytest.approx(
        {"a": 0.03, "b": 0.06, "c": 0.06, "d": 0.02}
    )
    assert stats.holm({"x": 0.5, "y": 0.6}) == {"x": 1.0, "y": 1.0}  # capped at 1
    assert stats.holm({"alone": 0.02}) == {"alone": 0.02}  # a family of one is not adjusted


def test_paired_t_is_scipys_paired_t_test():
    from scipy.stats import ttest_rel

    rng = np.random.default_rng(5)
    a, b = rng.normal(0.5, 0.1, 40), rng.normal(0.47, 0.1, 40)
    mean, p, n = stats.paired_t(a - b)
    assert n == 40 and mean == pytest.approx(float(np.mean(a - b)))
    assert p == pytest.approx(ttest_rel(a, b).pvalue, rel=1e-9)
    assert stats.paired_t(np.zeros(5))[1] == 1.0 and stats.paired_t(np.full(5, 0.2))[1] == 0.0
    assert stats.paired_t([0.3]) == (0.3, None, 1)


def _differences(t: float, n: int = 200, seed: int = 0) -> np.ndarray:
    """``n`` differences whose one-sample t statistic is exactly ``t``."""
    noise = np.random.default_rng(seed).normal(size=n)
    noise = (noise - noise.mean()) / noise.std(ddof=1)
    return noise + t / np.sqrt(n)


def test_each_verdict_has_a_direction_and_is_adjusted_over_the_metrics():
    random = np.random.default_rng(6).uniform(0.4, 0.6, 200)
    marginal = {  # each alone at p = 0.017 in its own direction
        "insertion_auc": random + _differences(2.4, seed=1),  # higher is better
        "deletion_auc": random + _differences(2.4, seed=2),  # lower is better
        "object_mass": random - _differences(2.4, seed=3),
    }
    alone = {name: scoring.summarize(name, v, {"random": random}) for name, v in marginal.items()}
    assert [r.verdict for r in alone.values()] == ["better", "worse", "worse"]
    assert all(r.p_adjusted == pytest.approx(0.0173, abs=5e-4) for r in alone.values())
    strong = scoring.summarize("road", random - 0.05 + _differences(0.0, seed=4) * 0.01, {"random": random})
    family = scoring.adjust(alone | {"road": strong, "randomization_similarity": None})
    assert family["randomization_similarity"] is None
    assert family["road"].verdict == "worse"  # far below the random map: a finding, stated
    for name in marginal:  # three tests at 0.017 among four: Holm gives each 3 x 0.017 > 0.05
        assert family[name].p_adjusted == pytest.approx(3 * alone[name].p_adjusted)
        assert family[name].verdict == "not distinguishable"
    printed = scoring.to_json(family, names=("road", "object_mass"))
    assert printed["road"]["verdict"] == "worse" and printed["road"]["p_adjusted"] < 0.05
    assert printed["object_mass"]["p"] == pytest.approx(alone["object_mass"].p_adjusted)
    assert "distinguishable" not in printed["road"]


def test_maps_worse_than_a_random_map_are_never_called_better_than_softmax():
    # the filed case: AMC 2 points above softmax on object mass, image by image, both below a random map
    rng = np.random.default_rng(4)
    random = np.clip(rng.normal(0.495, 0.05, 200), 0, 1)
    softmax = random - 0.047 + rng.normal(0, 0.03, 200)
    amc = softmax + 0.020 + rng.normal(0, 0.01, 200)
    amc_result, softmax_result = (scoring.summarize("object_mass", v, {"random": random}) for v in (amc, softmax))
    assert amc_result.verdict == softmax_result.verdict == "worse"
    comparison = scoring.compare(amc_result, softmax_result)
    assert comparison.significant and comparison.better  # ahead of softmax ...
    assert verdicts.outcome(comparison, amc_result) == "higher, but worse than a random map"  # ... but not better
    text = verdicts.sentence(comparison, "AMC", "softmax", amc_result)
    assert "(better" not in text and "AMC's maps are worse than a random map" in text
    # maps that beat the random map are better than softmax when they are ahead of it
    above = scoring.summarize("object_mass", amc + 0.2, {"random": random})
    ahead = scoring.compare(above, softmax_result)
    assert verdicts.outcome(ahead, above) == "better" and "(better; Holm-adjusted p" in verdicts.sentence(
        ahead, "AMC", "softmax", above
    )


RANDOM_MASS = (0.495, 0.494, 0.496)  # each run's random-map object mass


def _seeds(values: tuple[float, ...]) -> dict[int, dict[str, scoring.MetricResult]]:
    """Runs of seeds 0, 1, 2 with these object masses (each run's mean over two images)."""
    return {
        seed: {"object_mass": scoring.summarize("object_mass", np.full(2, v), {"random": np.full(2, r)})}
        for seed, (v, r) in enumerate(zip(values, RANDOM_MASS, strict=True))
    }


def test_over_seeds_each_run_is_one_value_and_the_verdict_is_a_paired_t_test_over_the_seeds():
    from scipy.stats import ttest_rel

    from lab.analysis import statistics

    softmax, amc = _seeds((0.44, 0.452, 0.446)), _seeds((0.462, 0.470, 0.471))
    amc_seeds, softmax_seeds = scoring.over_seeds(amc), scoring.over_seeds(softmax)
    mass = amc_seeds["object_mass"]
    assert amc_seeds["road"] is None
    assert mass.seeds == [0, 1, 2] and list(mass.values.values()) == pytest.approx([0.462, 0.470, 0.471])
    assert mass.stats == statistics.interval(list(mass.values.values()), bounds=(0.0, 1.0))  # t, inside [0, 1]
    assert mass.verdict == "worse" and mass.baseline == pytest.approx(0.495, abs=1e-6)
    expected = ttest_rel([0.462, 0.470, 0.471], RANDOM_MASS).pvalue
    assert mass.p_adjusted == pytest.approx(expected, rel=1e-4)  # one metric: nothing to adjust
    comparisons = scoring.compare_all(amc_seeds, softmax_seeds)
    comparison = comparisons["object_mass"]
    difference, paired = statistics.paired_difference(mass.values, softmax_seeds["object_mass"].values)
    assert (comparison.ci_low, comparison.ci_high, comparison.n) == (difference.ci_low, difference.ci_high, 3)
    assert comparison.significant and comparison.over == "seeds"
    assert verdicts.outcome(comparison, mass) == "higher, but worse than a random map"
    assert "over 3 training seeds" in verdicts.sentence(comparison, "AMC", "softmax", mass)
    # one seed: no interval, no test, so neither a verdict nor an outcome
    alone = scoring.over_seeds({0: amc[0]})["object_mass"]
    assert alone.stats.ci_low is None and alone.verdict is None
    single = scoring.compare_all({"object_mass": alone}, scoring.over_seeds({0: softmax[0]}))["object_mass"]
    assert single.p_adjusted is None and verdicts.outcome(single, alone) == "no significant difference"
