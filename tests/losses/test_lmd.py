"""Large Margin Discriminative loss: the properties of losses-spec.md section 4.7 and its state handling."""

from __future__ import annotations

from functools import partial

import pytest
import torch

import losses
from losses.lmd import LMDHead, boundary_distances
from tests.losses.formulas import seeded_head, term_of

lmd_head = partial(seeded_head, "lmd", n_classes=3, head_type=LMDHead)


def set_classifier(head: LMDHead, weight: torch.Tensor, bias: torch.Tensor) -> None:
    with torch.no_grad():
        head.classifier.weight.copy_(weight)
        head.classifier.bias.copy_(bias)


def test_boundary_distance_equals_the_exact_point_to_hyperplane_distance() -> None:
    generator = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(5, 4, generator=generator), torch.randn(5, generator=generator)
    points = torch.randn(5, 4, generator=generator) * 3
    distances = boundary_distances(points, weight, bias)
    for c in range(5):
        for j in range(5):
            if j == c:
                continue
            normal, offset = weight[c] - weight[j], bias[c] - bias[j]
            # the foot of the perpendicular from the point onto {x: normal.x + offset = 0}
            foot = points[c] - (normal @ points[c] + offset) / (normal @ normal) * normal
            assert (normal @ foot + offset).item() == pytest.approx(0.0, abs=1e-4)
            exact = torch.linalg.vector_norm(points[c] - foot).item()
            side = 1.0 if (normal @ points[c] + offset) > 0 else -1.0
            assert distances[c, j].item() == pytest.approx(side * exact, rel=1e-4, abs=1e-5)


def test_boundary_distance_is_unchanged_by_scaling_the_classifier() -> None:
    generator = torch.Generator().manual_seed(1)
    weight, bias, points = (
        torch.randn(4, 3, generator=generator),
        torch.randn(4, generator=generator),
        torch.randn(4, 3),
    )
    scaled = boundary_distances(points, 7.5 * weight, 7.5 * bias)
    assert torch.allclose(scaled, boundary_distances(points, weight, bias), atol=1e-5)


def three_class_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Three tight 2-D classes around (10, 0), (-10, 10) and (-10, -10)."""
    centers = torch.tensor([[10.0, 0.0], [-10.0, 10.0], [-10.0, -10.0]])
    offsets = torch.tensor([[0.1, 0.0], [-0.1, 0.0], [0.0, 0.1], [0.0, -0.1]])
    labels = torch.arange(3).repeat_interleave(4)
    return centers[labels] + offsets.repeat(3, 1), labels


def test_margin_term_is_zero_with_zero_gradient_when_every_class_clears_its_boundaries() -> None:
    head = lmd_head(delta_var=0.5, delta_dist=2.0)
    set_classifier(head, torch.tensor([[1.0, 0.0], [-0.5, 0.8], [-0.5, -0.8]]), torch.zeros(3))
    features, labels = three_class_batch()
    _, parts = term_of(head, features, labels)
    parts["lmd_margin"].backward()
    assert parts["lmd_margin"].item() == 0.0
    assert torch.equal(head.classifier.weight.grad, torch.zeros(3, 2))
    assert torch.equal(head.classifier.bias.grad, torch.zeros(3))


def test_margin_term_is_the_shortfall_to_the_closest_boundary() -> None:
    head = lmd_head(delta_dist=3.0)
    set_classifier(head, torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 5.0]]), torch.zeros(3))
    features = torch.tensor([[1.0, 0.0], [-2.0, 0.0], [0.0, 4.0]])
    _, parts = term_of(head, features, torch.arange(3))
    # logits of the three means: (1, -1, 0), (-2, 2, 0), (0, 0, 20); |W_c - W_j| is 2 or sqrt(26)
    closest = [min(2 / 2, 1 / 26**0.5), min(4 / 2, 2 / 26**0.5), min(20 / 26**0.5, 20 / 26**0.5)]
    expected = sum(max(3.0 - d, 0.0) for d in closest) / 3
    assert parts["lmd_margin"].item() == pytest.approx(expected, rel=1e-5)


def test_var_term_is_zero_when_every_sample_is_within_delta_var_of_its_center() -> None:
    head = lmd_head(delta_var=0.5, delta_dist=2.0)
    features, labels = three_class_batch()
    _, parts = term_of(head, features, labels)
    assert parts["lmd_var"].item() == 0.0


def test_var_term_is_the_squared_hinge_on_the_distance_to_the_batch_mean_when_rho_is_zero() -> None:
    head = lmd_head(delta_var=0.5, delta_dist=2.0, momentum=0.0)
    term_of(head, torch.full((2, 2), 50.0), torch.tensor([0, 0]))  # an earlier, far-away centre
    features = torch.tensor([[0.0, 0.0], [2.0, 0.0], [5.0, 5.0], [5.0, 8.0]])
    labels = torch.tensor([0, 0, 1, 1])
    _, parts = term_of(head, features, labels)
    expected = ((1.0 - 0.5) ** 2 + (1.5 - 0.5) ** 2) / 2
    assert parts["lmd_var"].item() == pytest.approx(expected, rel=1e-6)
    assert torch.equal(head.centers[:2], torch.tensor([[1.0, 0.0], [5.0, 6.5]]))


def test_first_sighting_sets_the_center_to_the_batch_mean_so_a_lone_sample_costs_nothing() -> None:
    head = lmd_head(delta_var=0.25)
    features = torch.tensor([[3.0, -2.0], [1.0, 1.0], [2.0, 2.0]])
    _, parts = term_of(head, features, torch.tensor([0, 1, 1]))
    assert torch.equal(head.centers[:2], torch.tensor([[3.0, -2.0], [1.5, 1.5]]))
    assert torch.equal(head.seen, torch.tensor([True, True, False]))
    assert torch.equal(head.centers[2], torch.zeros(2))
    lone_hinge, pair_hinge = 0.0, (2**0.5 / 2 - 0.25) ** 2
    assert parts["lmd_var"].item() == pytest.approx((lone_hinge + pair_hinge) / 2, rel=1e-5)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.99])
def test_a_second_identical_batch_moves_the_center_by_one_minus_rho_of_the_gap(rho: float) -> None:
    head = lmd_head(momentum=rho)
    term_of(head, torch.tensor([[4.0, 4.0], [0.0, 0.0]]), torch.tensor([0, 1]))
    previous = head.centers.clone()
    features = torch.tensor([[1.0, 2.0], [3.0, 0.0], [-1.0, -1.0]])
    labels = torch.tensor([0, 0, 1])
    term_of(head, features, labels)
    batch_means = torch.tensor([[2.0, 1.0], [-1.0, -1.0]])
    expected_first = previous[:2] + (1 - rho) * (batch_means - previous[:2])
    assert torch.allclose(head.centers[:2], expected_first, atol=1e-6)
    moved_once = head.centers.clone()
    term_of(head, features, labels)
    expected_second = moved_once[:2] + (1 - rho) * (batch_means - moved_once[:2])
    assert torch.allclose(head.centers[:2], expected_second, atol=1e-6)
    assert torch.equal(head.centers[2], torch.zeros(2))


def test_gradient_reaches_the_features_through_the_current_share_only_and_never_the_state() -> None:
    rho = 0.75
    head = lmd_head(delta_var=0.0, delta_dist=0.1, momentum=rho, reg=0.0, beta=0.0)
    term_of(head, torch.tensor([[10.0, 10.0]]), torch.tensor([0]))
    features = torch.tensor([[0.0, 0.0], [2.0, 0.0]], requires_grad=True)
    value, _ = term_of(head, features, torch.tensor([0, 0]))
    value.backward()
    assert not head.centers.requires_grad and head.centers.grad is None
    # L = mean_i ||f_i - mu||^2 with mu = (1 - rho) * mean(f) + rho * c_prev, residuals r_i = f_i - mu
    center = (1 - rho) * torch.tensor([1.0, 0.0]) + rho * torch.tensor([10.0, 10.0])
    residuals = features.detach() - center
    share = (1 - rho) / 2
    expected = residuals - share * residuals.sum(dim=0)  # (2/n) * (r_i - (1 - rho)/n * sum_k r_k), n = 2
    assert torch.allclose(features.grad, expected, atol=1e-5)


def test_state_is_untouched_in_eval_mode() -> None:
    head = lmd_head()
    head.train()
    head(torch.randn(8, 2), torch.tensor([0, 0, 1, 1, 2, 2, 0, 1]))
    centers, seen = head.centers.clone(), head.seen.clone()
    head.eval()
    total, _ = head(torch.randn(8, 2) * 10, torch.tensor([2, 2, 2, 2, 1, 1, 0, 0]))
    assert torch.isfinite(total)
    assert torch.equal(head.centers, centers) and torch.equal(head.seen, seen)


def test_identical_classifier_rows_give_finite_values_and_gradients() -> None:
    head = lmd_head()
    set_classifier(head, torch.ones(3, 2), torch.zeros(3))
    features = torch.randn(6, 2, requires_grad=True)
    total, _ = head(features, torch.tensor([0, 0, 1, 1, 2, 2]))
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(features.grad).all()
    assert torch.isfinite(head.classifier.weight.grad).all()


def test_delta_dist_must_exceed_delta_var() -> None:
    with pytest.raises(losses.HparamError, match=r"lmd\.delta_dist"):
        losses.make_params("lmd", {"delta_var": 1.0, "delta_dist": 1.0})
    assert losses.make_params("lmd", {"delta_var": 1.0, "delta_dist": 1.5}).delta_dist == 1.5
