"""The angle figures: histograms of the angle of each feature to its class direction and between class
directions, and the spacing of the class directions against the best possible."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from lab.analysis.geometry import AngleStats, nearest_off_diagonal
from lab.figures.style import (
    class_colors,
    styled,
)


def _histogram(fig: go.Figure, values: np.ndarray, name: str, color: str, bins: np.ndarray) -> None:
    counts, edges = np.histogram(values, bins=bins)
    share = counts / max(len(values), 1)
    fig.add_trace(
        go.Bar(
            x=(edges[:-1] + edges[1:]) / 2,
            y=share,
            width=np.diff(edges),
            name=name,
            marker=dict(color=color, opacity=0.6, line=dict(width=0)),
        )
    )


# What each angle histogram overlays: (AngleStats field, legend, color) pairs, the x axis and the share's unit.
ANGLE_HISTOGRAMS = {
    "own_vs_other": (
        (("own", "to own class", "#117733"), ("nearest_other", "to nearest other class", "#CC6677")),
        "angle (degrees)",
        "share of samples",
    ),
    "pairs": (
        (("within_pairs", "same class", "#332288"), ("between_pairs", "different classes", "#DDCC77")),
        "pairwise angle (degrees)",
        "share of pairs",
    ),
}


def angle_histogram(stats: AngleStats, kind: str, title: str | None = None, height: int = 300) -> go.Figure:
    """``own_vs_other``: each sample's angle to its own class direction against the nearest other one;
    ``pairs``: pairwise angles between samples of the same class against different classes."""
    series, x_title, y_title = ANGLE_HISTOGRAMS[kind]
    return _angle_histograms(
        [(getattr(stats, field), name, color) for field, name, color in series], x_title, y_title, title, height
    )


def _angle_histograms(
    series: Sequence[tuple[np.ndarray, str, str]], x_title: str, y_title: str, title: str | None, height: int
) -> go.Figure:
    """Overlaid histograms of angles in degrees (3-degree bins over 0-180), one per (values, name, color)."""
    bins = np.linspace(0, 180, 61)
    fig = go.Figure()
    for values, name, color in series:
        _histogram(fig, values, name, color, bins)
    fig.update_layout(barmode="overlay", bargap=0)
    fig.update_xaxes(title=x_title, range=[0, 180], dtick=30, gridcolor="#EEEEEE")
    fig.update_yaxes(title=y_title, gridcolor="#EEEEEE", tickformat=".0%")
    styled(fig, title, height, legend=False)
    # inside the plot, top right, where angle histograms are thin: a legend above a narrow chart wraps onto the title
    legend = dict(x=0.99, xanchor="right", y=0.99, yanchor="top", bgcolor="rgba(255,255,255,0.85)", font=dict(size=11))
    return fig.update_layout(showlegend=True, legend=legend)


def spacing_bound_label(best: float, known: bool = True) -> str:
    """The dashed line's label: the bound is on the closest pair (the shortest bar) only, so no bar above it
    contradicts it; ``known`` False for a numerically estimated bound, which the optimum may pass slightly."""
    return f"closest pair at most {best:.1f}°" if known else f"closest pair at most about {best:.1f}° (estimate)"


def direction_spacing(
    direction_angles: np.ndarray,
    class_names: Sequence[str],
    best: float,
    title: str | None = None,
    height: int = 300,
    known: bool = True,
) -> go.Figure:
    """Each class direction's angle to its nearest neighbour direction, against the widest possible gap
    between the closest two directions (``best``, known or an estimate). The closest pair's bars (the
    shortest) are outlined, so the line's label points at them. Every class gets a tick; the label sits on
    a white box above the bars."""
    nearest = nearest_off_diagonal(direction_angles)
    colors = class_colors(len(class_names))
    names = [str(n) for n in class_names]
    closest = np.isclose(nearest, nearest.min()) if len(nearest) else np.zeros(0, dtype=bool)
    fig = go.Figure(
        go.Bar(
            x=names,
            y=nearest,
            marker=dict(
                color=colors,
                line=dict(color="#000000", width=[2.5 if flag else 0 for flag in closest]),
            ),
            name="nearest direction",
            customdata=[" (the closest pair)" if flag else "" for flag in closest],
            hovertemplate="%{x}: %{y:.1f}° to its nearest class%{customdata}<extra></extra>",
        )
    )
    fig.add_hline(y=best, line=dict(color="#333333", dash="dash"))
    top = max(best, float(nearest.max())) * 1.22
    fig.add_annotation(
        text=spacing_bound_label(best, known),
        xref="paper",
        x=1.0,
        xanchor="right",
        y=best,
        yanchor="bottom",
        showarrow=False,
        bgcolor="rgba(255,255,255,0.92)",
        bordercolor="#333333",
        borderwidth=1,
        borderpad=2,
        font=dict(size=11),
    )
    if len(names) <= 20:
        fig.update_xaxes(tickmode="array", tickvals=names, ticktext=names, type="category")
    fig.update_yaxes(title="angle to nearest class (deg)", range=[0, top], gridcolor="#EEEEEE")
    return styled(fig, title, height, legend=False)
