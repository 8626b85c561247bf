"""The playground and the decision regions read the real loss heads: the field's values are the head's own
loss, its arrows point downhill, regions are the head's argmax and the margin band is where the margin
still bites."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import losses
from lab.analysis import playground

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


# ---------------------------------------------------------------- the schedule, the class's band, smooth boundaries

NEAR_A_BOUNDARY = np.array([0.5, 1.1])  # 24 degrees from class 0's direction: 6 past its boundary with class 9


def _value(name: str, label: int = 0, **progress: float) -> float:
    return playground.readings([name], playground.evenly_spaced(10), label, NEAR_A_BOUNDARY, **progress)[0]["value"]


def test_by_default_lsoftmax_asks_more_than_softmax_of_a_feature_near_a_boundary():
    softmax, lsoftmax = _value("softmax"), _value("lsoftmax")
    assert softmax == pytest.approx(1.5388, abs=1e-4)
    assert lsoftmax > softmax + 0.1  # lambda at its floor: half the target logit is psi(theta)
    field = playground.loss_field("lsoftmax", playground.evenly_spaced(10), 0, resolution=21)
    plain = playground.loss_field("softmax", playground.evenly_spaced(10), 0, resolution=21)
    assert field.progress == 1.0 and field.schedule == {"softmax_share": 0.5}
    own = field.classes == 0
    assert np.all(field.loss[own] >= plain.loss[own] - 1e-12) and np.any(field.loss[own] > plain.loss[own] + 0.1)


def test_at_the_start_of_training_lsoftmax_is_softmax():
    assert _value("lsoftmax", progress=0.0) == pytest.approx(_value("softmax", progress=0.0), abs=2e-3)
    start, end = (
        playground.loss_field("lsoftmax", playground.evenly_spaced(10), 0, resolution=21, progress=progress)
        for progress in (0.0, 1.0)
    )
    assert start.schedule["softmax_share"] > 0.99 and start.band.mean() < end.band.mean() / 20


def test_progress_is_the_heads_own_step_counter_against_its_planned_run():
    directions = playground.evenly_spaced(10)
    by_playground = playground.head_with_directions("lsoftmax", directions, progress=0.3)
    trained = losses.build("lsoftmax", 2, 10).double().eval()
    with torch.no_grad():
        trained.classifier.weight.copy_(torch.as_tensor(directions))
    trained.plan(2000)
    trained.train()
    for _ in range(600):  # 30% of a 2,000-step run, counted by the head's own training-mode forwards
        trained(torch.zeros(1, 2, dtype=torch.float64), torch.tensor([0]))
    trained.eval()
    point, label = torch.as_tensor(NEAR_A_BOUNDARY[None]), torch.tensor([0])
    with torch.no_grad():
        assert float(by_playground(point, label)[0]) == pytest.approx(float(trained(point, label)[0]))
    assert playground.schedule_progress(by_playground) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="from 0 to 1"):
        playground.set_progress(by_playground, 1.5)


@pytest.mark.parametrize("name", ["lsoftmax", "sphereface", "cosface", "arcface"])
def test_the_band_lies_only_inside_the_chosen_class_along_its_own_boundaries(name):
    directions = playground.evenly_spaced(10)
    field = playground.loss_field(name, directions, 3, resolution=41, arrows=3)
    head = playground.head_with_directions(name, directions)
    _, points = playground.plane_points(float(field.axis[-1]), len(field.band_axis))
    inside = field.band.ravel()
    assert inside.any()
    assert np.all(playground.decisions(head, points[inside]) == 3)
    # on both sides of class 3's direction, and only near its boundaries (18 degrees away)
    offset = np.degrees(np.arctan2(points[inside, 1], points[inside, 0])) - np.degrees(np.arctan2(*directions[3][::-1]))
    assert (offset > 0).any() and (offset < 0).any()
    assert np.abs(offset).min() > 3


def test_the_lsoftmax_band_starts_where_its_margin_is_last_met():
    head_cls = losses.get("lsoftmax")
    params = losses.make_params("lsoftmax", {})
    cone = head_cls.cone_degrees(params, 36.0)  # lambda at its floor, a rival 36 degrees away
    field = playground.loss_field("lsoftmax", playground.evenly_spaced(10), 0, resolution=51, arrows=3)
    _, points = playground.plane_points(float(field.axis[-1]), len(field.band_axis))
    ring = np.abs(np.linalg.norm(points, axis=1) - 2.0) < 0.02
    angles = np.abs(np.degrees(np.arctan2(points[ring, 0], points[ring, 1])))  # from class 0, straight up
    banded = angles[field.band.ravel()[ring]]
    assert banded.min() == pytest.approx(cone, abs=1.0) and banded.max() == pytest.approx(18.0, abs=1.0)


def test_zero_lines_interpolate_between_grid_points():
    axis = np.linspace(-1, 1, 11)
    x, y = np.meshgrid(axis, axis)
    line = playground.zero_lines(axis, x - 0.3 * y + 0.01)
    assert len(line) >= 10 and np.abs(line[..., 0] - 0.3 * line[..., 1] + 0.01).max() < 1e-12
    circle = playground.zero_lines(axis, x**2 + y**2 - 0.5).reshape(-1, 2)
    assert np.abs(np.linalg.norm(circle, axis=1) - np.sqrt(0.5)).max() < 0.01  # a tenth of a cell
    axis = np.linspace(-1, 1, 10)  # the origin inside a cell whose four edges all cross: a saddle
    x, y = np.meshgrid(axis, axis)
    hyperbola = playground.zero_lines(axis, x * y - 0.001)
    assert np.allclose(np.prod(hyperbola, axis=-1), 0.001)
    assert np.all(np.sign(hyperbola[:, 0, 0]) == np.sign(hyperbola[:, 1, 0]))  # no segment joins its two branches


@pytest.mark.parametrize("name", PER_FEATURE)
def test_the_boundaries_are_smooth_lines_on_the_heads_own_boundary(name):
    directions = playground.evenly_spaced(7) * np.linspace(1, 1.5, 7)[:, None]
    field = playground.loss_field(name, directions, 0, resolution=31, arrows=3)
    head = playground.head_with_directions(name, directions)
    ends = torch.as_tensor(field.boundaries.reshape(-1, 2)).requires_grad_()
    top = head.logits(ends).topk(2, dim=1).values
    gap = top[:, 0] - top[:, 1]
    (slope,) = torch.autograd.grad(gap.sum(), ends)
    distance = (gap / slope.norm(dim=1)).detach().numpy()  # from the boundary, to first order
    cell = field.axis[1] - field.axis[0]
    away = np.linalg.norm(field.boundaries.reshape(-1, 2), axis=1) > 1  # near the origin every region meets
    assert away.sum() > 50 and distance[away].max() < 0.05 * cell  # cell edges would lie up to half a cell off
    # slanted lines, not the horizontal and vertical edges of grid cells
    extent = np.abs(np.diff(field.boundaries, axis=1)[:, 0])
    assert np.mean((extent[:, 0] > 1e-9) & (extent[:, 1] > 1e-9)) > 0.8


def test_the_figure_draws_the_fields_smooth_boundaries_and_the_bands_zero_contour():
    from lab import figures

    directions = playground.evenly_spaced(10)
    field = playground.loss_field("lsoftmax", directions, 0, resolution=31, arrows=3)
    fig = figures.loss_field_figure(field, directions, [str(c) for c in range(10)], 0)
    lines = next(t for t in fig.data if t.name == "decision boundary")
    drawn = np.stack([lines.x, lines.y], axis=1).reshape(-1, 3, 2)
    assert np.isnan(drawn[:, 2]).all() and np.array_equal(drawn[:, :2], field.boundaries)
    band = next(t for t in fig.data if t.name == "margin band")
    assert band.type == "contour" and band.contours.type == "constraint" and band.contours.value == 0
    rows = np.searchsorted(field.band_axis, band.y)
    cols = np.searchsorted(field.band_axis, band.x)
    np.testing.assert_allclose(band.z, field.band_depth[np.ix_(rows, cols)].astype(np.float32))
    assert (field.band_depth[np.ix_(rows, cols)] > 0).sum() == field.band.sum()  # the crop keeps all of it
