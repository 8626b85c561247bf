"""What a loss head does at every point of the feature space, computed by the real heads of ``losses/``:
which class it decides for (decision regions), where a margin loss still penalises a feature it already
classifies right (the margin band), and the training loss of one feature and its gradient (the Learn
page's playground). Nothing here re-implements a loss: every number comes from ``head.logits``,
``head(features, labels)`` or, for the margin band, the margin heads' own ``margined``.

Heads are evaluated in eval mode, so no head state (step counters, centers) changes.
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

CIRCLE_POINTS = 720
SPHERE_LONGITUDES = 96
SPHERE_LATITUDES = 48
FIELD_RESOLUTION = 51  # the heat map is drawn smoothed, so 51 x 51 values look continuous
ARROWS_PER_SIDE = 15
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


# ---------------------------------------------------------------- heads


def has_own_value(name: str) -> bool:
    """Whether one feature alone has a value of this loss. The heads that add a batch term to
    cross-entropy (pairs of samples, class means of the batch, centers that move with it) do not:
    alone, a feature sees only the cross-entropy part of them."""
    return not issubclass(losses.get(name), CrossEntropyPlusHead)


def head_with_directions(
    name: str, directions: np.ndarray, params: Mapping[str, Any] | None = None, dtype: torch.dtype = torch.float64
) -> LossHead:
    """A fresh ``name`` head in eval mode whose class weights are ``directions`` (K x D) and whose bias,
    if it has one, is zero."""
    directions = np.asarray(directions, dtype=np.float64)
    head = losses.build(name, directions.shape[1], directions.shape[0], **dict(params or {})).to(dtype).eval()
    with torch.no_grad():
        head.classifier.weight.copy_(torch.as_tensor(directions, dtype=dtype))
        if head.classifier.bias is not None:
            head.classifier.bias.zero_()
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
    band: np.ndarray | None  # resolution x resolution: the margin band, None without a margin
    arrow_points: np.ndarray  # M x 2
    downhill: np.ndarray  # M x 2: the negative gradient at each arrow point


def loss_field(
    name: str,
    directions: np.ndarray,
    label: int,
    params: Mapping[str, Any] | None = None,
    extent: float = 2.5,
    resolution: int = FIELD_RESOLUTION,
    arrows: int = ARROWS_PER_SIDE,
) -> LossField:
    """The loss ``name`` (with ``params``, class weights ``directions``) of a feature of class ``label``
    at every point of a grid over [-extent, extent]^2, the decision regions and margin band there, and
    the negative gradient on a coarser grid of ``arrows`` x ``arrows`` points."""
    head = head_with_directions(name, directions, params)
    axis, points = plane_points(extent, resolution)
    values = feature_losses(head, points, label)
    found = regions(head, points)
    inset = extent * (1 - 1 / arrows)
    _, arrow_points = plane_points(inset, arrows)
    _, gradients = losses_and_gradients(head, arrow_points, label)
    shape = (resolution, resolution)
    return LossField(
        axis=axis,
        loss=values.reshape(shape),
        classes=found.classes.reshape(shape),
        band=None if found.band is None else found.band.reshape(shape),
        arrow_points=arrow_points,
        downhill=-gradients,
    )


def readings(
    names: list[str],
    directions: np.ndarray,
    label: int,
    point: np.ndarray,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Each loss's value, gradient and decision at one feature ``point`` of class ``label``."""
    rows = []
    for name in names:
        head = head_with_directions(name, directions, (params or {}).get(name))
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
