"""Center loss: the value, the paper's centre update rule and its state handling (losses-spec.md 5.1)."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from losses.center import CenterHead
from tests.losses.formulas import seeded_head, term_of

center_head = partial(seeded_head, "center", head_type=CenterHead)


def test_features_at_their_centers_cost_nothing() -> None:
    head = center_head()
    head.centers = torch.tensor([[1.0, 2.0], [-3.0, 0.5], [0.0, 0.0], [4.0, -4.0]])
    labels = torch.tensor([0, 1, 1, 3, 0])
    value, _ = term_of(head, head.centers[labels].clone(), labels)
    assert value.item() == 0.0


def test_value_is_half_the_mean_squared_distance_and_its_gradient_is_residual_over_batch() -> None:
    head = center_head()
    head.centers = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    features = torch.tensor([[3.0, 0.0], [0.0, -1.0], [1.0, 1.0]], requires_grad=True)
    labels = torch.tensor([0, 1, 0])
    value, _ = term_of(head, features, labels)
    value.backward()
    assert value.item() == pytest.approx((4.0 + 4.0 + 1.0) / (2 * 3))
    residuals = torch.tensor([[2.0, 0.0], [0.0, -2.0], [0.0, 1.0]])
    assert torch.allclose(features.grad, residuals / 3)


def test_one_update_with_alpha_one_and_a_single_sample_moves_the_center_halfway() -> None:
    head = center_head(alpha=1.0)
    head.centers = torch.tensor([[0.0, 0.0], [2.0, 2.0], [5.0, 5.0], [-1.0, 0.0]])
    head.train()
    head(torch.tensor([[4.0, -2.0], [0.0, 0.0]]), torch.tensor([0, 1]))
    assert torch.allclose(head.centers[0], torch.tensor([2.0, -1.0]))
    assert torch.allclose(head.centers[1], torch.tensor([1.0, 1.0]))


def test_update_follows_the_paper_rule_for_several_samples() -> None:
    alpha = 0.5
    head = center_head(alpha=alpha)
    start = torch.tensor([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    head.centers = start.clone()
    features = torch.tensor([[3.0, 1.0], [1.0, 5.0], [-1.0, 0.0]])
    head.train()
    head(features, torch.tensor([0, 0, 0]))
    delta = ((start[0] - features[0]) + (start[0] - features[1]) + (start[0] - features[2])) / (1 + 3)
    assert torch.allclose(head.centers[0], start[0] - alpha * delta)


def test_classes_absent_from_the_batch_keep_their_centers() -> None:
    head = center_head()
    head.centers = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]])
    head.train()
    head(torch.randn(5, 2), torch.tensor([1, 1, 3, 1, 3]))
    assert torch.equal(head.centers[0], torch.tensor([1.0, 1.0]))
    assert torch.equal(head.centers[2], torch.tensor([3.0, 3.0]))
    assert not torch.equal(head.centers[1], torch.tensor([2.0, 2.0]))


def test_update_does_not_depend_on_the_weight() -> None:
    features, labels = torch.randn(6, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    moved = []
    for weight in (0.001, 5.0):
        head = center_head(weight=weight)
        head.train()
        head(features, labels)
        moved.append(head.centers.clone())
    assert torch.equal(moved[0], moved[1])


def test_state_is_not_updated_in_eval_mode_and_gets_no_gradient() -> None:
    head = center_head()
    head.train()
    head(torch.randn(6, 2, requires_grad=True), torch.tensor([0, 1, 2, 3, 0, 1]))
    assert not head.centers.requires_grad
    centers = head.centers.clone()
    head.eval()
    head(torch.randn(6, 2), torch.tensor([0, 1, 2, 3, 0, 1]))
    assert torch.equal(head.centers, centers)


def test_class_directions_are_the_centers() -> None:
    head = center_head()
    head.centers = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]])
    assert torch.equal(head.class_directions(), head.centers)
