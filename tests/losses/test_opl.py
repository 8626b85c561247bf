"""Orthogonal Projection Loss: the properties of losses-spec.md section 2.5 and its edge cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import losses
from tests.losses.formulas import term_of

NEG_ABS = ("elementwise", "of_mean", "none")


def opl_terms(features: torch.Tensor, labels: torch.Tensor, **hparams: object) -> dict[str, torch.Tensor]:
    head = losses.build("opl", features.shape[1], 10, **hparams)
    value, parts = term_of(head, features, labels)
    return {"opl": value, **parts}


def evenly_spaced_classes(n_classes: int, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` identical 2-D features for each of ``n_classes`` directions spread around the circle."""
    angles = torch.arange(n_classes, dtype=torch.float64) * 2 * math.pi / n_classes
    directions = torch.stack([angles.cos(), angles.sin()], dim=1).float()
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    return directions[labels], labels


def test_one_hot_class_directions_give_zero_whatever_the_scale() -> None:
    labels = torch.arange(6).repeat_interleave(3)
    scales = torch.linspace(0.5, 7.0, len(labels)).unsqueeze(1)
    features = F.one_hot(labels, 8).float() * scales
    terms = opl_terms(features, labels)
    assert terms["opl_same_cos"].item() == pytest.approx(1.0, abs=1e-6)
    assert terms["opl_diff_cos"].item() == pytest.approx(0.0, abs=1e-7)
    assert terms["opl"].item() == pytest.approx(0.0, abs=1e-6)


def test_ten_evenly_spaced_classes_in_2d_cost_0_3040_at_gamma_one_half() -> None:
    features, labels = evenly_spaced_classes(10, 3)
    terms = opl_terms(features, labels, gamma=0.5)
    expected_diff = sum(abs(math.cos(math.radians(36 * k))) for k in range(1, 10)) / 9
    assert expected_diff == pytest.approx(0.6080, abs=1e-4)
    assert terms["opl_same_cos"].item() == pytest.approx(1.0, abs=1e-6)
    assert terms["opl_diff_cos"].item() == pytest.approx(expected_diff, abs=1e-5)
    assert terms["opl"].item() == pytest.approx(0.3040, abs=1e-4)


@pytest.mark.parametrize(("neg_abs", "expected"), [("elementwise", 0.6080), ("of_mean", 1 / 9), ("none", -1 / 9)])
def test_the_abs_variants_differ_for_features_of_both_signs(neg_abs: str, expected: float) -> None:
    features, labels = evenly_spaced_classes(10, 2)
    assert opl_terms(features, labels, neg_abs=neg_abs)["opl_diff_cos"].item() == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("neg_abs", NEG_ABS)
def test_invariant_to_permuting_the_batch_and_rescaling_features(neg_abs: str) -> None:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(20, 3, generator=generator)
    labels = torch.randint(0, 4, (20,), generator=generator)
    order = torch.randperm(20, generator=generator)
    scales = torch.rand(20, 1, generator=generator) * 5 + 0.2
    expected = opl_terms(features, labels, neg_abs=neg_abs)["opl"].item()
    assert opl_terms(features[order], labels[order], neg_abs=neg_abs)["opl"].item() == pytest.approx(expected, rel=1e-5)
    assert opl_terms(features * scales, labels, neg_abs=neg_abs)["opl"].item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("neg_abs", NEG_ABS)
def test_equals_a_naive_double_loop_over_ordered_pairs(neg_abs: str) -> None:
    generator = torch.Generator().manual_seed(3)
    features = torch.randn(11, 4, generator=generator)
    labels = torch.randint(0, 3, (11,), generator=generator)
    same, diff = [], []
    for i in range(11):
        for j in range(11):
            if i == j:
                continue
            cosine = F.cosine_similarity(features[i], features[j], dim=0).item()
            (same if labels[i] == labels[j] else diff).append(cosine)
    same_mean = sum(same) / (len(same) + 1e-6)
    if neg_abs == "elementwise":
        diff_mean = sum(abs(c) for c in diff) / (len(diff) + 1e-6)
    else:
        diff_mean = sum(diff) / (len(diff) + 1e-6)
        diff_mean = abs(diff_mean) if neg_abs == "of_mean" else diff_mean
    value = opl_terms(features, labels, gamma=0.7, neg_abs=neg_abs)["opl"].item()
    assert value == pytest.approx((1 - same_mean) + 0.7 * diff_mean, rel=1e-5)


def test_the_three_abs_variants_agree_on_non_negative_features() -> None:
    generator = torch.Generator().manual_seed(4)
    features = torch.rand(16, 5, generator=generator)
    labels = torch.randint(0, 4, (16,), generator=generator)
    values = [opl_terms(features, labels, neg_abs=neg_abs)["opl"].item() for neg_abs in NEG_ABS]
    assert values == pytest.approx([values[0]] * 3, rel=1e-6)


@pytest.mark.parametrize("neg_abs", NEG_ABS)
def test_stays_in_range(neg_abs: str) -> None:
    generator = torch.Generator().manual_seed(6)
    for _ in range(20):
        features = torch.randn(24, 2, generator=generator)
        labels = torch.randint(0, 3, (24,), generator=generator)
        terms = opl_terms(features, labels, gamma=2.0, neg_abs=neg_abs)
        assert -1.0 <= terms["opl_same_cos"].item() <= 1.0
        assert -1.0 <= terms["opl_diff_cos"].item() <= 1.0
        if neg_abs == "elementwise":
            assert terms["opl_diff_cos"].item() >= 0.0
            assert 0.0 <= terms["opl"].item() <= 2.0 + 2.0


def test_a_single_class_batch_has_no_inter_class_part() -> None:
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    terms = opl_terms(features, torch.tensor([2, 2, 2]))
    same_mean = (0.0 + math.sqrt(0.5) + math.sqrt(0.5)) / 3
    assert terms["opl_diff_cos"].item() == 0.0
    assert terms["opl"].item() == pytest.approx(1.0 - same_mean, rel=1e-5)
    terms["opl"].backward()
    assert torch.isfinite(features.grad).all()


def test_all_distinct_labels_leave_the_constant_one_and_the_inter_class_part() -> None:
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    terms = opl_terms(features, torch.tensor([0, 1, 2]), gamma=0.5)
    diff_mean = (0.0 + math.sqrt(0.5) + math.sqrt(0.5)) / 3
    assert terms["opl_same_cos"].item() == 0.0
    assert terms["opl"].item() == pytest.approx(1.0 + 0.5 * diff_mean, rel=1e-5)
    terms["opl"].backward()
    assert torch.isfinite(features.grad).all()


def test_a_zero_feature_has_zero_cosines() -> None:
    features = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    terms = opl_terms(features, torch.tensor([0, 0, 1]))
    assert terms["opl_same_cos"].item() == 0.0
    assert terms["opl_diff_cos"].item() == pytest.approx(0.0, abs=1e-7)


def test_warns_when_the_feature_dimension_is_below_the_class_count() -> None:
    warnings = losses.warnings_for("opl", 2, 10)
    assert len(warnings) == 1 and "10 feature dimensions" in warnings[0]
    assert losses.warnings_for("opl", 16, 10) == []
    assert losses.warnings_for("opl", 2, 10, {"weight": 0}) == []
    assert losses.warnings_for("opl", 2, 10, {"neg_abs": "of_mean"}) == [], "only the elementwise |cos| has a floor"
