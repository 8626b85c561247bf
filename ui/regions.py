"""Decision regions of a finished run for the Feature space page: the trained head evaluated on a grid of
the view (:mod:`lab.analysis.playground`), per stored epoch where the epoch's class directions decide alone."""

from __future__ import annotations

import dataclasses

import numpy as np
import streamlit as st

from lab.analysis import playground
from lab.figures import Shading, raw_reach
from lab.runs.record import RunRecord
from ui import loaders

PLANE_RESOLUTION = 121


@dataclasses.dataclass(frozen=True)
class RunRegions:
    """A run's shading per stored epoch (every epoch the final one where ``per_epoch`` is False) and a
    sentence on what the shading shows, for the caption."""

    by_epoch: dict[int, Shading]
    per_epoch: bool
    note: str


def _grid(view: str, dim: int, arrays: loaders.RunArrays) -> tuple[np.ndarray, np.ndarray | None]:
    """The points to evaluate (any shape ending in D) and, for a plane, its side coordinates."""
    if view == "raw":
        extent = raw_reach(list(arrays.snapshots)) * 1.05
        axis, points = playground.plane_points(extent, PLANE_RESOLUTION)
        return points.reshape(PLANE_RESOLUTION, PLANE_RESOLUTION, 2), axis
    return (playground.circle_points() if dim == 2 else playground.sphere_points()), None


def _shading(regions: playground.Regions, axis: np.ndarray | None) -> Shading:
    return Shading(regions.classes, regions.band, axis)


@st.cache_data(show_spinner=False, max_entries=64)
def _run_regions(_record: RunRecord, _arrays: loaders.RunArrays, key: tuple[str, float], view: str) -> RunRegions:
    config = _record.config
    _, head, lock = loaders.trained_model(_record)
    points, axis = _grid(view, config.feat_dim, _arrays)
    flat = points.reshape(-1, config.feat_dim)
    epochs = [int(e) for e in _arrays.snapshot_epochs]
    last = _arrays.last_epoch or 1
    with lock:
        bias_free = playground.directions_decide(head, flat)
        radius = 1.0
        if view != "raw" and not bias_free:  # a bias makes the decision depend on the length too
            radius = float(np.median(np.linalg.norm(_arrays.features, axis=1)))
        final = _shading(playground.regions(head, points * radius, progress=1.0), axis)
    if view == "raw":
        where = "over the plane"
    elif bias_free:
        where = "by angle alone: without a bias they hold at every length"
    else:
        where = f"at the median feature length, {radius:.2f}; a bias moves them for shorter or longer features (Raw)"
    band = (
        " Grey: the margin band, classified right but still penalised by the margin." if final.band is not None else ""
    )
    if _arrays.snapshot_directions is None or not bias_free:
        why = (
            "this run did not store each epoch's class directions"
            if _arrays.snapshot_directions is None
            else "a classifier with a bias, or class centers, cannot be rebuilt from the stored directions"
        )
        note = f"decision regions {where}; the final weights' at every epoch, as {why}.{band}"
        return RunRegions({epoch: final for epoch in epochs}, False, note)
    by_epoch = {}
    for row, epoch in enumerate(epochs):
        if epoch == _arrays.last_epoch:
            by_epoch[epoch] = final
            continue
        head_then = playground.head_with_directions(
            config.loss, _arrays.snapshot_directions[row], config.loss_params, dtype=head.classifier.weight.dtype
        )
        by_epoch[epoch] = _shading(playground.regions(head_then, points, progress=epoch / last), axis)
    note = f"decision regions {where}; they move with the epoch.{band}"
    return RunRegions(by_epoch, True, note)


def run_regions(record: RunRecord, arrays: loaders.RunArrays, view: str) -> RunRegions | None:
    """The decision regions of ``record`` in ``view`` (unit, raw or map), or None where they are not drawn
    (the raw view of 3-D features)."""
    if record.config.feat_dim == 3 and view == "raw":
        return None
    grid_view = "unit" if view == "map" else view
    return _run_regions(record, arrays, loaders.cache_key(record), grid_view)
