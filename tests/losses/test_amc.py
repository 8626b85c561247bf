"""AMC-Loss: the per-pair values, pairing, invariances and bounds of losses-spec.md section 1.6, and the
official training script's pair labels (predictions) and weight ramp-up as options."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

import losses
from losses.amc import COSINE_CLIP, official_rampup
from tests.losses.formulas import term_of

MARGIN = 0.5
FLOOR = math.acos(torch.tensor(1.0 - COSINE_CLIP, dtype=torch.float32).item()) ** 2  # clip floor in float32


def amc_term(features: torch.Tensor, labels: list[int], **hparams: object) -> torch.Tensor:
    head = losses.build("amc", features.shape[1], 10, **hparams)
    return term_of(head, features, torch.tensor(labels))[0]


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


def worked_example_head(pair_labels: str) -> losses.LossHead:
    """The minimal worked case: W = [[1, 0], [0, 1], [-1, 0]], no bias, m = 0.5, lambda = 0.1."""
    head = losses.build("amc", 2, 3, margin=0.5, weight=0.1, pair_labels=pair_labels)
    with torch.no_grad():
        head.classifier.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
        head.classifier.bias.zero_()
    return head


@pytest.mark.parametrize(
    ("pair_labels", "expected_total", "expected_amc"), [("truth", 0.813266, 1.082108), ("prediction", 0.705055, 0.0)]
)
def test_pairs_by_truth_or_by_prediction_on_the_issue_example(
    pair_labels: str, expected_total: float, expected_amc: float
) -> None:
    # sample 2 (label 0) is predicted as class 1: by truth it pairs with sample 0 as one class, by
    # prediction the pair (0, 2) is of two classes 84° apart, beyond the margin, and costs nothing
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.1, 1.0], [-1.0, 0.0]])
    total, terms = worked_example_head(pair_labels)(features, torch.tensor([0, 1, 0, 2]))
    assert total.item() == pytest.approx(expected_total, abs=1e-6)
    assert terms["ce"].item() == pytest.approx(0.705055, abs=1e-6)
    assert terms["amc"].item() == pytest.approx(expected_amc, abs=1e-6)
    assert expected_amc == pytest.approx(math.acos(0.1 / math.hypot(0.1, 1.0)) ** 2 / 2 if expected_amc else 0.0)


def test_predicted_pair_labels_pass_no_gradient_to_the_classifier_through_the_pairing() -> None:
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.3], [-1.0, 0.0]], requires_grad=True)
    head = worked_example_head("prediction")
    value, _ = term_of(head, features, torch.tensor([0, 1, 0, 2]))
    value.backward()
    assert value.item() > 0 and features.grad.abs().sum() > 0
    assert head.classifier.weight.grad is None and head.classifier.bias.grad is None


def test_the_official_ramp_up_scaled_to_the_run_length() -> None:
    steps_per_epoch, total = 10, 2000  # a run standing for the official 200 epochs of 10 steps
    factor = [official_rampup(1 + epoch * steps_per_epoch, total) * 0.1 for epoch in (0, 1, 10, 25, 49, 50, 199)]
    assert factor[0] == 0.0, "no AMC term in the first epoch"
    assert factor[2] == pytest.approx(0.1 * 100 * math.exp(-5 * 0.8**2)) == pytest.approx(0.4076, abs=1e-4)
    assert factor[3] == pytest.approx(10 * math.exp(-1.25))
    assert factor[5] == factor[6] == 10.0
    assert factor == sorted(factor)
    assert official_rampup(steps_per_epoch, total) == 0.0 < official_rampup(steps_per_epoch + 1, total)
    assert official_rampup(1, 1) == 0.0, "a one-step run is all epoch 0"


@pytest.mark.parametrize("schedule", ["constant", "official"])
def test_the_weight_schedule_follows_the_planned_steps_and_is_restored(schedule: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    head = losses.build("amc", 2, 4, weight=0.1, weight_schedule=schedule)
    head.plan(400)  # 2 steps per official epoch
    features, labels = torch.randn(8, 2), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    weights = []
    for _ in range(30):
        total, terms = head(features, labels)
        weights.append((total - terms["ce"]).item() / terms["amc"].item())
    if schedule == "constant":
        assert weights == pytest.approx([0.1] * 30)
    else:
        expected = [0.1 * official_rampup(t, 400) for t in range(1, 31)]
        assert weights == pytest.approx(expected, abs=1e-6) and weights[:2] == [0.0, 0.0] and weights[2] > 0
    save_file(head.state_dict(), str(tmp_path / "head.safetensors"))
    restored = losses.build("amc", 2, 4, weight=0.1, weight_schedule=schedule)
    restored.load_state_dict(load_file(str(tmp_path / "head.safetensors")))
    assert int(restored.step) == 30 and int(restored.planned_steps) == 400
    head.eval()
    head(features, labels)
    assert int(head.step) == 30, "an eval forward is not a step"
