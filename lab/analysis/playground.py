"""What a loss head does at every point of the feature space, computed by the real heads of ``losses/``:
which class it decides for (decision regions), where a margin loss still penalises a feature it already
classifies right (the margin band), and the training loss of one feature and its gradient (the Learn
page's playground). Nothing here re-implements a loss: every number comes from ``head.logits``,
``head(features, labels)`` or, for the margin band, the margin heads' own ``margined``.

Heads are evaluated in eval mode, so no head state (step counters, centers) changes. A head with a
schedule (L-Softmax's lambda, the margin warm-up of CosFace and ArcFace) is put at a point of training
through its own ``plan`` and step counter (:func:`set_progress`), so its forward applies its own schedule;
the playground shows the end of training unless asked otherwise, where the margin is at full strength.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch.func import grad_and_value, vmap

import losses
from losses.base import CrossEntropyPlusHead, LossHead
from losses.pml import PmlHead

CIRCLE_POINTS = 720
SPHERE_LONGITUDES = 96
SPHERE_LATITUDES = 48
FIELD_RESOLUTION = 51  # the heat map is drawn smoothed, so 51 x 51 values look continuous
ARROWS_PER_SIDE = 15
BAND_REFINEMENT = 4  # the margin band is a few degrees wide, narrower than a heat-map cell near the origin
PLANNED_STEPS = 1000  # the run a playground head is planned for: progress moves in steps of 1/1000
AGREEMENT = 0.995  # share of grid points where the class directions must reproduce the head's decisions


# ---------------------------------------------------------------- grids


def evenly_spaced(n_classes: int) -> np.ndarray:
    """``n_classes`` unit vectors in 2-D, evenly spaced from 90 degrees (class 0 straight up)."""
    angles = np.pi / 2 + 2 * np.pi * np.arange(n_classes) / n_classes
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def circle_points(count: int = CIRCLE_POINTS) -> np.ndarray:
    """``count`` unit vectors around the circle, from angle 0 counter-clockwise."""
    angles = 2 * np.pi * np.arange(count) / count
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def sphere_points(longitudes: int = SPHERE_LONGITUDES, latitudes: int = SPHERE_LATITUDES) -> np.ndarray:
    """A latitudes x longitudes x 3 grid of unit vectors, poles included, longitudes closing the seam
    (plotly's surface draws it as a closed sphere)."""
    lon = np.linspace(-np.pi, np.pi, longitudes)
    lat = np.linspace(-np.pi / 2, np.pi / 2, latitudes)
    lon_grid, lat_grid = np.meshgrid(lon, lat)
    return np.stack(
        [np.cos(lat_grid) * np.cos(lon_grid), np.cos(lat_grid) * np.sin(lon_grid), np.sin(lat_grid)], axis=-1
    )


def plane_points(extent: float, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """``(axis, points)``: the coordinates along one side of a square grid over [-extent, extent] and its
    resolution**2 points, row by row (y outer, x inner), as a heat map lays them out."""
    axis = np.linspace(-extent, extent, resolution)
    x, y = np.meshgrid(axis, axis)
    return axis, np.stack([x.ravel(), y.ravel()], axis=1)


def zero_lines(axis: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Where ``values`` (over the square grid ``axis`` x ``axis``, rows along y) crosses 0, as S x 2 x 2
    line segments (S segments of two (x, y) ends) found by marching squares: each end is interpolated
    linearly along a grid edge whose two ends differ in sign (positive against not), so a boundary is drawn
    as a smooth line, not as the edges of grid cells. A cell whose four edges all cross (a saddle) is split
    by the sign of its mean."""
    values = np.asarray(values, dtype=np.float64)
    positive = values > 0
    step = np.diff(axis)

    def crossing(a: np.ndarray, b: np.ndarray, flips: np.ndarray) -> np.ndarray:
        share = np.zeros_like(a)
        np.divide(a, a - b, out=share, where=flips)
        return share

    flips_x = positive[:, :-1] != positive[:, 1:]  # along x, between columns c and c + 1
    along_x = axis[:-1][None, :] + crossing(values[:, :-1], values[:, 1:], flips_x) * step[None, :]
    points_x = np.stack([along_x, np.broadcast_to(axis[:, None], along_x.shape)], axis=-1)
    flips_y = positive[:-1, :] != positive[1:, :]  # along y, between rows r and r + 1
    along_y = axis[:-1][:, None] + crossing(values[:-1, :], values[1:, :], flips_y) * step[:, None]
    points_y = np.stack([np.broadcast_to(axis[None, :], along_y.shape), along_y], axis=-1)
    # each cell's edges in order around it: bottom, right, top, left
    flips = np.stack([flips_x[:-1], flips_y[:, 1:], flips_x[1:], flips_y[:, :-1]], axis=-1)
    ends = np.stack([points_x[:-1], points_y[:, 1:], points_x[1:], points_y[:, :-1]], axis=-2)
    count = flips.sum(axis=-1)
    two = count == 2
    first = flips[two].argmax(axis=-1)
    second = 3 - flips[two][:, ::-1].argmax(axis=-1)
    segments = [np.stack([ends[two][np.arange(len(first)), first], ends[two][np.arange(len(first)), second]], 1)]
    saddle = count == 4
    if saddle.any():
        mean = (values[:-1, :-1] + values[:-1, 1:] + values[1:, :-1] + values[1:, 1:])[saddle] / 4
        with_corner = (mean > 0) == positive[:-1, :-1][saddle]  # the bottom-left corner joins the middle
        cut = ends[saddle]
        pairs = np.where(with_corner[:, None, None], [[0, 1], [2, 3]], [[3, 0], [1, 2]])
        for k in range(2):
            rows = np.arange(len(cut))
            segments.append(np.stack([cut[rows, pairs[:, k, 0]], cut[rows, pairs[:, k, 1]]], axis=1))
    return np.concatenate(segments).reshape(-1, 2, 2)


# ---------------------------------------------------------------- heads


def has_own_value(name: str) -> bool:
    """Whether the playground can draw this loss: one feature alone has a value of it, at class directions
    the playground sets. The heads that add a batch term to cross-entropy (pairs of samples, class means of the
    batch, centers that move with it) have none alone: a feature sees only their cross-entropy part; and
    pytorch-metric-learning's losses keep their class weights inside the library's module."""
    head = losses.get(name)
    return not issubclass(head, (CrossEntropyPlusHead, PmlHead))


def set_progress(head: LossHead, progress: float) -> None:
    """Put a scheduled head at ``progress`` through training (0: its first step, 1: its last): planned for
    ``PLANNED_STEPS`` steps with its step counter at that share, so that its own forward (and
    :func:`schedule_progress`) applies its schedule there. A head without a schedule is left alone."""
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress must be from 0 to 1, got {progress!r}")
    if head.scheduled:
        head.plan(PLANNED_STEPS)
        head.step.fill_(round(progress * PLANNED_STEPS))


def schedule_progress(head: LossHead) -> float:
    """The progress t / T at which the head's eval-mode forward applies its schedule (1 without one)."""
    if not head.scheduled:
        return 1.0
    if head.training:
        raise ValueError("schedule_progress reads an eval-mode head; in training mode it would count a step")
    return head.advance()


def head_with_directions(
    name: str,
    directions: np.ndarray,
    params: Mapping[str, Any] | None = None,
    dtype: torch.dtype = torch.float64,
    progress: float = 1.0,
) -> LossHead:
    """A fresh ``name`` head in eval mode whose class weights are ``directions`` (K x D), whose bias, if it
    has one, is zero, and whose schedule stands at ``progress`` through training (1: the end)."""
    directions = np.asarray(directions, dtype=np.float64)
    head = losses.build(name, directions.shape[1], directions.shape[0], **dict(params or {})).to(dtype).eval()
    with torch.no_grad():
        head.classifier.weight.copy_(torch.as_tensor(directions, dtype=dtype))
        if head.classifier.bias is not None:
            head.classifier.bias.zero_()
    set_progress(head, progress)
    return head


def _tensor(points: np.ndarray, head: LossHead) -> torch.Tensor:
    return torch.as_tensor(np.asarray(points), dtype=head.classifier.weight.dtype)


def decisions(head: LossHead, points: np.ndarray) -> np.ndarray:
    """The class ``head`` predicts at each point (argmax of its inference logits)."""
    with torch.no_grad():
        return head.logits(_tensor(points, head)).argmax(dim=1).numpy()


def margin_band(head: LossHead, points: np.ndarray, classes: np.ndarray, progress: float = 1.0) -> np.ndarray | None:
    """Where the margin reserves room: points the head classifies as ``classes`` whose margin-modified
    target logit (at ``progress`` through training, 1: the end) would still lose to another class's
    logit. None for a head without a margin."""
    margined = getattr(head, "margined", None)
    if margined is None:
        return None
    labels = torch.as_tensor(np.asarray(classes), dtype=torch.long)
    with torch.no_grad():
        plain, target, _ = margined(head.cast(_tensor(points, head)), labels, progress)
        rivals = plain.scatter(1, labels.unsqueeze(1), -math.inf).max(dim=1).values
    return (target < rivals).numpy()


def class_leads(head: LossHead, points: np.ndarray) -> np.ndarray:
    """For every class c and point (K x N): c's inference logit minus the largest other class's. It is
    positive inside the region the head decides for c and crosses 0 on its boundary, so the boundaries are
    the zero contours of these values (smooth lines between grid points, not the edges of grid cells)."""
    with torch.no_grad():
        logits = head.logits(_tensor(points, head))
    top = logits.topk(2, dim=1).values
    best_other = torch.where(logits == top[:, :1], top[:, 1:], top[:, :1])
    return (logits - best_other).T.numpy()


def band_depth(head: LossHead, points: np.ndarray, label: int, progress: float) -> np.ndarray | None:
    """How deep each point lies in the margin band of class ``label`` (at ``progress`` through training):
    the smaller of ``label``'s lead over the best other inference logit and the shortfall of its
    margin-modified target logit against that rival. Positive where the head decides for ``label`` but the
    margin is not yet met (the band, next to ``label``'s own boundaries only), crossing 0 at the band's
    edges. Each point is evaluated alone, as in :func:`feature_losses`. None for a head without a margin."""
    margined = getattr(head, "margined", None)
    if margined is None:
        return None

    def one(feature: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        plain, margin_target, _ = margined(feature.unsqueeze(0), target.unsqueeze(0), progress)
        return plain[0], margin_target[0]

    x = head.cast(_tensor(points, head))
    with torch.no_grad():
        logits = head.logits(x)
        others = logits.index_fill(1, torch.tensor([int(label)]), -math.inf)
        depth = (logits[:, int(label)] - others.max(dim=1).values).numpy()  # the class's row of class_leads
    # Outside the class's region its margin-modified target is below its plain logit, below the winner's, so
    # the shortfall exceeds -lead there and the smaller of the two is the lead: only the region is computed.
    inside = depth > 0
    labels = torch.full((int(inside.sum()),), int(label), dtype=torch.long)
    with torch.no_grad():
        plain, target = vmap(one)(x[torch.from_numpy(inside)], labels)
        rival = plain.scatter(1, labels.unsqueeze(1), -math.inf).max(dim=1).values
    depth[inside] = np.minimum(depth[inside], (rival - target).numpy())
    return depth


def directions_decide(head: LossHead, points: np.ndarray) -> bool:
    """Whether the head's class directions alone reproduce its decisions on ``points`` (argmax of the
    dot product with each direction): true for the heads without a bias whose directions are their
    class weights, and so whether stored per-epoch directions give that epoch's regions."""
    directions = head.class_directions()
    if head.classifier.bias is not None or directions is None:
        return False
    by_directions = (np.asarray(points) @ directions.double().numpy().T).argmax(axis=1)
    return float(np.mean(by_directions == decisions(head, points))) >= AGREEMENT


def directions_name(head: LossHead) -> str:
    """What the head's class directions are, for captions: "classifier weights" when they are its class
    weight vectors (as the loss uses them, perhaps of unit length), else "class centers"."""
    directions = head.class_directions()
    if directions is None:
        return "class means"
    weights = torch.nn.functional.normalize(head.classifier.weight.detach(), dim=1)
    same = torch.allclose(torch.nn.functional.normalize(directions, dim=1), weights, atol=1e-5)
    return "classifier weights" if same else "class centers"


@dataclasses.dataclass(frozen=True)
class Regions:
    """Decision regions on a set of points: the class at each, and the margin band (None without a margin)."""

    classes: np.ndarray
    band: np.ndarray | None


def regions(head: LossHead, points: np.ndarray, progress: float = 1.0) -> Regions:
    """The head's decision at every point of ``points`` (any shape ending in D) and its margin band."""
    points = np.asarray(points)
    flat = points.reshape(-1, points.shape[-1])
    classes = decisions(head, flat)
    band = margin_band(head, flat, classes, progress)
    shape = points.shape[:-1]
    return Regions(classes.reshape(shape), None if band is None else band.reshape(shape))


# ---------------------------------------------------------------- the loss of one feature


def _one_feature_loss(head: LossHead):
    def one(feature: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return head(feature.unsqueeze(0), target.unsqueeze(0))[0]

    return one


def feature_losses(head: LossHead, features: np.ndarray, label: int) -> np.ndarray:
    """The training loss of each feature alone, labelled ``label``: ``head(f[None], label)`` for every
    row f, vectorised with ``torch.func.vmap``."""
    x = _tensor(features, head)
    with torch.no_grad():
        values = vmap(_one_feature_loss(head))(x, torch.full((len(x),), int(label), dtype=torch.long))
    return values.numpy()


def losses_and_gradients(head: LossHead, features: np.ndarray, label: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`feature_losses` and the gradient of each with respect to its feature."""
    x = _tensor(features, head)
    labels = torch.full((len(x),), int(label), dtype=torch.long)
    gradients, values = vmap(grad_and_value(_one_feature_loss(head)))(x, labels)
    return values.detach().numpy(), gradients.detach().numpy()


@dataclasses.dataclass(frozen=True)
class LossField:
    """One loss over a square of the 2-D feature plane, for a feature of one class."""

    axis: np.ndarray  # grid coordinates along x and along y
    loss: np.ndarray  # resolution x resolution, rows along y
    classes: np.ndarray  # resolution x resolution: the class the head decides for
    boundaries: np.ndarray  # S x 2 x 2: the decision boundaries as segments (zero lines of class_leads)
    band_axis: np.ndarray  # the finer grid's coordinates along x and y on which the band is evaluated
    band_depth: np.ndarray | None  # band_axis x band_axis: band_depth of the class, None without a margin
    arrow_points: np.ndarray  # M x 2
    downhill: np.ndarray  # M x 2: the negative gradient at each arrow point
    progress: float  # where in training the head's schedule stands (1: the end)
    schedule: dict[str, float]  # the values the head's schedule gives there, as its forward reports them

    @property
    def band(self) -> np.ndarray | None:
        """band_axis x band_axis: where the class's margin band lies, None without a margin."""
        return None if self.band_depth is None else self.band_depth > 0


def loss_field(
    name: str,
    directions: np.ndarray,
    label: int,
    params: Mapping[str, Any] | None = None,
    extent: float = 2.5,
    resolution: int = FIELD_RESOLUTION,
    arrows: int = ARROWS_PER_SIDE,
    progress: float = 1.0,
) -> LossField:
    """The loss ``name`` (with ``params``, class weights ``directions``, its schedule at ``progress``
    through training) of a feature of class ``label`` at every point of a grid over [-extent, extent]^2,
    the decision regions there, the class's margin band on a ``BAND_REFINEMENT`` times finer grid, and the
    negative gradient on a coarser grid of ``arrows`` x ``arrows`` points."""
    head = head_with_directions(name, directions, params, progress=progress)
    at = schedule_progress(head)
    axis, points = plane_points(extent, resolution)
    values = feature_losses(head, points, label)
    inset = extent * (1 - 1 / arrows)
    _, arrow_points = plane_points(inset, arrows)
    _, gradients = losses_and_gradients(head, arrow_points, label)
    band_axis, band_points = plane_points(extent, BAND_REFINEMENT * (resolution - 1) + 1)
    depth = band_depth(head, band_points, label, at)
    with torch.no_grad():
        _, terms = head(_tensor(points[:1], head), torch.tensor([int(label)]))
    shape = (resolution, resolution)
    return LossField(
        axis=axis,
        loss=values.reshape(shape),
        classes=decisions(head, points).reshape(shape),
        boundaries=np.concatenate([zero_lines(axis, leads.reshape(shape)) for leads in class_leads(head, points)]),
        band_axis=band_axis,
        band_depth=None if depth is None else depth.reshape(len(band_axis), len(band_axis)),
        arrow_points=arrow_points,
        downhill=-gradients,
        progress=at,
        schedule={key: float(value) for key, value in terms.items() if key != "ce"},
    )


def readings(
    names: list[str],
    directions: np.ndarray,
    label: int,
    point: np.ndarray,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    progress: float = 1.0,
) -> list[dict[str, Any]]:
    """Each loss's value, gradient and decision at one feature ``point`` of class ``label``, every
    schedule at ``progress`` through training."""
    rows = []
    for name in names:
        head = head_with_directions(name, directions, (params or {}).get(name), progress=progress)
        values, gradients = losses_and_gradients(head, np.asarray(point, dtype=np.float64)[None], label)
        gradient = gradients[0]
        rows.append(
            {
                "loss": name,
                "value": float(values[0]),
                "gradient": gradient,
                "gradient_norm": float(np.linalg.norm(gradient)),
                "decides": int(decisions(head, np.asarray(point)[None])[0]),
            }
        )
    return rows
