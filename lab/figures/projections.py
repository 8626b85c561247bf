"""2-D scatters of projected features (UMAP, PCA) and of raw features, each point carrying its test image's
index."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from lab.figures.features import FeatureFrame, feature_figure, highlight_trace, point_traces
from lab.figures.style import class_colors, styled


def feature_scatter(
    features: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    indices: np.ndarray | None = None,
    directions: np.ndarray | None = None,
    normalized: bool = True,
    title: str | None = None,
    height: int = 380,
    legend: bool = True,
) -> go.Figure:
    """One epoch's features of a 2-D or 3-D head (see :func:`feature_figure`), without animation."""
    frame = FeatureFrame(0, np.asarray(features), directions, title or "")
    return feature_figure(
        [frame],
        labels,
        class_names,
        indices=indices,
        view="unit" if normalized else "raw",
        height=height,
        legend=legend,
    )


def projection_scatter(
    coords: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    indices: np.ndarray | None = None,
    title: str | None = None,
    height: int = 380,
    axis_titles: tuple[str, str] = ("", ""),
    legend: bool = True,
    highlight: int | None = None,
) -> go.Figure:
    """A 2-D scatter of projected points (UMAP, PCA), coloured by class, the image ``highlight`` ringed."""
    labels = np.asarray(labels)
    indices = np.arange(len(labels)) if indices is None else np.asarray(indices)
    colors = class_colors(len(class_names))
    fig = go.Figure(point_traces(np.asarray(coords), labels, indices, class_names, colors, three_d=False))
    if highlight is not None and np.any(indices == highlight):
        fig.add_trace(highlight_trace(np.asarray(coords)[np.flatnonzero(indices == highlight)[0]], False))
    fig.update_xaxes(title=axis_titles[0], showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(title=axis_titles[1], showticklabels=False, showgrid=False, zeroline=False)
    return styled(fig, title, height, legend)
