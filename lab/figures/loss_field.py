"""The loss playground's figure: a loss's value over the plane of a 2-D feature, its margin band, the class
directions and the gradient arrows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from lab.analysis.geometry import unit_rows
from lab.analysis.playground import LossField
from lab.figures.features import highlight_trace
from lab.figures.style import (
    class_colors,
    styled,
)

BAND_FILL = "rgba(255, 255, 255, 0.45)"  # the margin band over the loss's heat map


def loss_field_figure(
    field: LossField,
    directions: np.ndarray,
    class_names: Sequence[str],
    label: int,
    *,
    title: str | None = None,
    picked: np.ndarray | None = None,
    height: int = 520,
) -> go.Figure:
    """The loss ``field`` of a feature of class ``label`` over the plane as a heat map, the decision
    boundaries (white lines), the class's margin band (pale), the class directions (rays), the negative
    gradient as arrows, and ``picked`` ringed. An invisible grid of points lets a click report where it
    landed. Boundaries and the band's edges are interpolated between grid points (the field's segments,
    a contour of its band depth), so they are drawn as smooth lines rather than the edges of grid cells."""
    colors = class_colors(len(class_names))
    axis = field.axis
    extent = float(axis[-1])
    fig = go.Figure(
        go.Heatmap(
            x=axis,
            y=axis,
            z=field.loss,
            zsmooth="best",
            colorscale="Viridis",
            colorbar=dict(title=dict(text="loss", side="right"), thickness=12, len=0.8),
            hovertemplate="feature (%{x:.2f}, %{y:.2f})<br>loss %{z:.3f}<extra></extra>",
            name="loss",
        )
    )
    if field.band is not None and field.band.any():
        fig.add_trace(_band(field.band_axis, field.band_depth))
    fig.add_trace(_segments(field.boundaries, "decision boundary"))
    for c, direction in enumerate(unit_rows(directions)):
        tip = direction * extent * 0.92
        width = 5 if c == label else 2.5
        fig.add_trace(
            go.Scatter(
                x=[0, tip[0]],
                y=[0, tip[1]],
                mode="lines+text",
                line=dict(color=colors[c], width=width),
                text=["", f"<b>{class_names[c]}</b>" if c == label else str(class_names[c])],
                textposition="top center",
                textfont=dict(color="white"),
                hovertext=f"class direction: {class_names[c]}",
                hoverinfo="text",
                name=f"class {class_names[c]}",
            )
        )
    arrow_spacing = 2 * extent / max(int(np.sqrt(len(field.arrow_points))), 1)
    fig.add_trace(_arrows(field.arrow_points, field.downhill, spacing=arrow_spacing))
    grid = np.stack(np.meshgrid(axis[::2], axis[::2]), axis=-1).reshape(-1, 2)
    fig.add_trace(
        go.Scatter(
            x=grid[:, 0],
            y=grid[:, 1],
            mode="markers",
            marker=dict(size=7, color="rgba(0,0,0,0)"),
            customdata=np.arange(len(grid)),
            hovertemplate="click to read every loss here<br>(%{x:.2f}, %{y:.2f})<extra></extra>",
            name="pick",
        )
    )
    if picked is not None:
        fig.add_trace(highlight_trace(np.asarray(picked), False))
    fig.update_xaxes(range=[-extent, extent], title="feature x", zeroline=False, showgrid=False, constrain="domain")
    fig.update_yaxes(
        range=[-extent, extent], title="feature y", zeroline=False, showgrid=False, scaleanchor="x", scaleratio=1
    )
    fig.update_layout(dragmode="pan")
    return styled(fig, title, height, legend=False)


def _band(axis: np.ndarray, depth: np.ndarray) -> go.Contour:
    """The margin band: where ``depth`` (over the grid ``axis`` x ``axis``) is positive, filled pale, with a
    thin white edge interpolated between grid points. Only the rows and columns around the band are sent
    (it lies in one class's sector), in float32. Plotly fills the side a constraint contour excludes, hence
    the "<"."""
    rows, cols = (np.flatnonzero(np.convolve((depth > 0).any(axis=a), [1, 1, 1], "same")) for a in (1, 0))
    rows, cols = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    return go.Contour(
        x=axis[cols],
        y=axis[rows],
        z=np.asarray(depth[rows, cols], dtype=np.float32),
        contours=dict(type="constraint", operation="<", value=0.0),
        fillcolor=BAND_FILL,
        line=dict(color="white", width=0.8, smoothing=0),
        showscale=False,
        hoverinfo="skip",
        name="margin band",
    )


def _segments(segments: np.ndarray, name: str) -> go.Scatter:
    """S x 2 x 2 line segments as one white line trace."""
    gaps = np.full((len(segments), 1, 2), np.nan)
    path = np.concatenate([segments, gaps], axis=1).reshape(-1, 2)
    return go.Scatter(
        x=path[:, 0], y=path[:, 1], mode="lines", line=dict(color="white", width=1.5), hoverinfo="skip", name=name
    )


def _arrows(points: np.ndarray, vectors: np.ndarray, spacing: float) -> go.Scatter:
    """Arrows (shaft and two barbs, as line segments) of length at most 0.85 ``spacing``, longer where the
    gradient is steeper (square-root scale, so gentle slopes still show a direction)."""
    norms = np.linalg.norm(vectors, axis=1)
    largest = float(norms.max()) if len(norms) and norms.max() > 0 else 1.0
    lengths = 0.85 * spacing * np.sqrt(norms / largest)
    unit = vectors / np.maximum(norms, 1e-12)[:, None]
    xs: list = []
    ys: list = []
    for (x0, y0), (ux, uy), length in zip(points, unit, lengths, strict=True):
        if length < 0.05 * spacing:
            continue
        x1, y1 = x0 + ux * length, y0 + uy * length
        barb = 0.3 * length
        for sign in (1, -1):
            angle = np.arctan2(uy, ux) + np.pi + sign * 0.45
            xs += [x0, x1, x1 + barb * np.cos(angle), None] if sign == 1 else [x1, x1 + barb * np.cos(angle), None]
            ys += [y0, y1, y1 + barb * np.sin(angle), None] if sign == 1 else [y1, y1 + barb * np.sin(angle), None]
    return go.Scatter(
        x=xs, y=ys, mode="lines", line=dict(color="white", width=1.3), hoverinfo="skip", name="downhill (−gradient)"
    )
