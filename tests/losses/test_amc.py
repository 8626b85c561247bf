"""AMC-Loss: the per-pair values, pairing, invariances and bounds of losses-spec.md section 1.6."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import losses
from losses.amc import COSINE_CLIP

MARGIN = 0.5
FLOOR = math.acos(torch.tensor(1.0 - COSINE_CLIP, dtype=torch.float32).item()) ** 2  # clip floor in float32


def amc_term(features: torch.Tensor, labels: list[int], **hparams: object) -> torch.Tensor:
    head = losses.build("amc", features.shape[1], 10, **hparams)
    return head.feature_term(features, torch.tensor(labels))[0]


def at_angle(radians: float) -> torch.Tensor:
    """Two 2-D features at ``radians`` from each other, as one half-split batch (i=0 pairs with i=1)."""
    return torch.tensor([[1.0, 0.0], [math.cos(radians), math.sin(radians)]])


@pytest.mark.parametrize("second", [[1.0, 2.0, -0.5], [3.0, 6.0, -1.5]], ids=["identical", "positive multiple"])
def test_identical_same_class_pair_sits_at_the_clip_floor_with_zero_gradient(second: list[float]) -> None:
    features = torch.tensor([[1.0, 2.0, -0.5], second], requires_grad=True)
    value = amc_term(features, [4, 4])
    value.backward()
    assert 0.0 < value.item() <= FLOOR * (1 + 1e-6)
    assert torch.equal(features.grad, torch.zeros_like(features))


@pytest.mark.parametrize("radians", [MARGIN, 0.7, 2.0, math.pi / 2, math.pi - 0.1])
def test_different_class_pair_beyond_the_margin_costs_nothing(radians: float) -> None:
    features = at_angle(radians).requires_grad_()
    value = amc_term(features, [0, 1], margin=MARGIN)
    value.backward()
    assert value.item() == pytest.approx(0.0, abs=1e-12)
    assert torch.allclose(features.grad, torch.zeros_like(features), atol=1e-6)


def test_different_class_pair_at_angle_zero_costs_margin_squared_up_to_the_clip() -> None:
    value = amc_term(at_angle(0.0), [0, 1], margin=MARGIN).item()
    assert value == pytest.approx((MARGIN - math.sqrt(FLOOR)) ** 2, rel=1e-5)
    assert value == pytest.approx(MARGIN**2, abs=1e-3)


def test_different_class_pair_inside_the_margin_is_a_squared_hinge() -> None:
    assert amc_term(at_angle(0.2), [0, 1], margin=MARGIN).item() == pytest.approx((MARGIN - 0.2) ** 2, rel=1e-4)


def test_orthogonal_same_class_pair_costs_quarter_pi_squared() -> None:
    assert amc_term(at_angle(math.pi / 2), [3, 3]).item() == pytest.approx((math.pi / 2) ** 2, rel=1e-5)


def test_antipodal_same_class_pair_costs_about_pi_squared() -> None:
    assert amc_term(at_angle(math.pi), [3, 3]).item() == pytest.approx(math.pi**2, rel=1e-3)


def test_zero_feature_counts_as_orthogonal() -> None:
    features = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    assert amc_term(features, [2, 2]).item() == pytest.approx((math.pi / 2) ** 2, rel=1e-5)


@pytest.mark.parametrize("pairing", ["half", "all"])
def test_invariant_to_positive_rescaling_of_each_feature(pairing: str) -> None:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(12, 3, generator=generator)
    labels = torch.randint(0, 3, (12,), generator=generator).tolist()
    scales = torch.rand(12, 1, generator=generator) * 10 + 0.1
    expected = amc_term(features, labels, pairing=pairing)
    assert amc_term(features * scales, labels, pairing=pairing).item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("pairing", ["half", "all"])
@pytest.mark.parametrize("margin", [0.0, 0.5, 2.0, math.pi])
def test_bounded_by_the_larger_of_pi_squared_and_margin_squared(pairing: str, margin: float) -> None:
    generator = torch.Generator().manual_seed(1)
    for _ in range(20):
        features = torch.randn(16, 2, generator=generator)
        labels = torch.randint(0, 3, (16,), generator=generator).tolist()
        value = amc_term(features, labels, pairing=pairing, margin=margin).item()
        assert 0.0 <= value <= max(math.pi**2, margin**2)


def pair_loss_by_hand(a: torch.Tensor, b: torch.Tensor, same: bool, margin: float) -> float:
    cosine = float(F.normalize(a, dim=0) @ F.normalize(b, dim=0))
    distance = math.acos(min(max(cosine, -1 + COSINE_CLIP), 1 - COSINE_CLIP))
    return distance**2 if same else max(margin - distance, 0.0) ** 2


@pytest.mark.parametrize("batch", [2, 9, 16])
def test_half_split_equals_an_explicit_loop_over_pairs_i_and_i_plus_half(batch: int) -> None:
    generator = torch.Generator().manual_seed(batch)
    features = torch.randn(batch, 3, generator=generator)
    labels = torch.randint(0, 3, (batch,), generator=generator).tolist()
    half = batch // 2
    by_hand = [
        pair_loss_by_hand(features[i], features[i + half], labels[i] == labels[i + half], 0.7) for i in range(half)
    ]
    value = amc_term(features, labels, margin=0.7, pairing="half")
    assert value.item() == pytest.approx(sum(by_hand) / half, rel=1e-5)


def test_all_pairs_equals_an_explicit_loop_over_ordered_pairs_without_the_diagonal() -> None:
    generator = torch.Generator().manual_seed(5)
    features = torch.randn(9, 2, generator=generator)
    labels = torch.randint(0, 3, (9,), generator=generator).tolist()
    pairs = [(i, j) for i in range(9) for j in range(9) if i != j]
    by_hand = [pair_loss_by_hand(features[i], features[j], labels[i] == labels[j], MARGIN) for i, j in pairs]
    value = amc_term(features, labels, pairing="all")
    assert value.item() == pytest.approx(sum(by_hand) / len(pairs), rel=1e-5)


def test_the_unpaired_last_sample_of_an_odd_batch_is_ignored() -> None:
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.3]])
    assert amc_term(features, [0, 0, 1]).item() == pytest.approx((math.pi / 2) ** 2, rel=1e-5)


@pytest.mark.parametrize("pairing", ["half", "all"])
def test_a_batch_of_one_has_no_pair_and_costs_nothing(pairing: str) -> None:
    features = torch.randn(1, 2, requires_grad=True)
    head = losses.build("amc", 2, 10, pairing=pairing)
    total, terms = head(features, torch.tensor([3]))
    total.backward()
    assert terms["amc"].item() == 0.0
    assert total.item() == pytest.approx(terms["ce"].item())
    assert torch.isfinite(features.grad).all()


def test_computes_in_float32_for_half_precision_features() -> None:
    head = losses.build("amc", 2, 10)
    features = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float16, requires_grad=True)
    total, terms = head(features, torch.tensor([1, 1]))
    total.backward()
    assert terms["amc"].dtype == torch.float32
    assert torch.isfinite(features.grad).all()
