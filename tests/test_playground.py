"""The playground and the decision regions read the real loss heads: the field's values are the head's own
loss, its arrows point downhill, regions are the head's argmax and the margin band is where the margin
still bites."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import losses
from lab import playground

PER_FEATURE = [name for name in losses.names() if playground.has_own_value(name)]


def test_the_per_feature_losses_are_the_ones_without_a_batch_term():
    assert set(PER_FEATURE) == {"softmax", "lsoftmax", "sphereface", "cosface", "arcface"}


@pytest.mark.parametrize("name", PER_FEATURE)
def test_the_field_is_the_heads_own_loss_at_sample_points(name):
    directions = playground.evenly_spaced(6) * 1.5
    field = playground.loss_field(name, directions, label=2, extent=2.0, resolution=21, arrows=5)
    head = playground.head_with_directions(name, directions)
    rng = np.random.default_rng(0)
    for row, col in rng.integers(0, 21, size=(6, 2)):
        feature = torch.tensor([[field.axis[col], field.axis[row]]], dtype=torch.float64)
        expected = float(head(feature, torch.tensor([2]))[0].detach())
        assert field.loss[row, col] == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", PER_FEATURE)
def test_the_gradient_arrows_point_downhill(name):
    directions = playground.evenly_spaced(5)
    field = playground.loss_field(name, directions, label=1, extent=2.0, resolution=11, arrows=7)
    head = playground.head_with_directions(name, directions)
    norms = np.linalg.norm(field.downhill, axis=1)
    steep = norms > 1e-6
    assert steep.sum() >= 30
    step = 1e-4 * field.downhill[steep] / norms[steep, None]
    before = playground.feature_losses(head, field.arrow_points[steep], 1)
    after = playground.feature_losses(head, field.arrow_points[steep] + step, 1)
    assert np.all(after < before)


def test_the_heads_state_does_not_move_while_the_playground_evaluates_it():
    head = playground.head_with_directions("cosface", playground.evenly_spaced(4))
    steps = int(head.step)
    playground.losses_and_gradients(head, np.random.default_rng(0).normal(size=(50, 2)), 0)
    playground.regions(head, playground.circle_points(36))
    assert int(head.step) == steps


def test_regions_are_the_heads_argmax_and_bias_free_sectors_follow_the_directions():
    directions = playground.evenly_spaced(8)
    circle = playground.circle_points()
    for name in ("softmax", "cosface", "lsoftmax"):
        head = playground.head_with_directions(name, directions)
        found = playground.regions(head, circle)
        with torch.no_grad():
            expected = head.logits(torch.as_tensor(circle)).argmax(1).numpy()
        assert np.array_equal(found.classes, expected)
        nearest = (circle @ directions.T).argmax(1)
        assert np.mean(found.classes == nearest) > 0.99


def test_cosface_band_is_where_cos_theta_minus_m_loses_to_the_neighbour():
    margin = 0.1
    directions = playground.evenly_spaced(10)
    head = playground.head_with_directions("cosface", directions, {"margin": margin, "warmup": 0.0})
    circle = playground.circle_points(3600)
    found = playground.regions(head, circle)
    cosines = circle @ directions.T
    own = cosines[np.arange(len(circle)), found.classes]
    rival = np.where(np.eye(10, dtype=bool)[found.classes], -np.inf, cosines).max(1)
    assert np.array_equal(found.band, own - margin < rival)
    # with 36 degrees between neighbours the band spans 2 asin(m / (2 sin 18 deg)) around each boundary
    width = 2 * math.degrees(math.asin(margin / (2 * math.sin(math.radians(18)))))
    assert found.band.mean() == pytest.approx(10 * width / 360, abs=0.01)


def test_no_band_without_a_margin_and_none_for_a_head_without_one():
    directions = playground.evenly_spaced(10)
    circle = playground.circle_points()
    plain = playground.head_with_directions("cosface", directions, {"margin": 0.0})
    assert not playground.regions(plain, circle).band.any()
    assert playground.regions(playground.head_with_directions("softmax", directions), circle).band is None


def test_the_band_grows_with_the_margins_schedule():
    directions = playground.evenly_spaced(10)
    head = playground.head_with_directions("cosface", directions, {"margin": 0.1, "warmup": 0.5})
    circle = playground.circle_points()
    shares = [playground.regions(head, circle, progress=p).band.mean() for p in (0.0, 0.25, 0.5, 1.0)]
    assert shares[0] == 0 and shares[1] < shares[2] == pytest.approx(shares[3])


def test_only_bias_free_weight_heads_are_decided_by_their_directions():
    circle = playground.circle_points()
    directions = playground.evenly_spaced(10) * np.linspace(0.5, 2, 10)[:, None]
    for name, expected in (("cosface", True), ("lsoftmax", True), ("sphereface", True), ("softmax", False)):
        head = playground.head_with_directions(name, directions)
        assert playground.directions_decide(head, circle) is expected, name
    center = losses.build("center", 2, 10).double().eval()
    center.centers.copy_(torch.as_tensor(directions))
    assert not playground.directions_decide(center, circle)
    assert playground.directions_name(center) == "class centers"
    assert playground.directions_name(playground.head_with_directions("arcface", directions)) == "classifier weights"


def test_readings_give_every_loss_at_one_point():
    directions = playground.evenly_spaced(10)
    rows = playground.readings(PER_FEATURE, directions, 0, np.array([0.0, 1.0]))
    assert [row["loss"] for row in rows] == PER_FEATURE
    assert all(row["decides"] == 0 for row in rows)  # (0, 1) lies on class 0's direction
    assert all(np.isfinite(row["value"]) and row["gradient"].shape == (2,) for row in rows)


def test_sphere_points_are_unit_vectors_covering_both_poles():
    grid = playground.sphere_points(24, 12)
    assert grid.shape == (12, 24, 3)
    assert np.allclose(np.linalg.norm(grid, axis=-1), 1)
    assert grid[..., 2].min() == pytest.approx(-1) and grid[..., 2].max() == pytest.approx(1)
