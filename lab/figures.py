"""Plotly figure builders: plain data in, a ``go.Figure`` out. No Streamlit, no I/O.

Every scatter carries the test-set image index in ``customdata`` so a page can map a selected point
back to its image. Classes use a colour-blind-safe palette (Paul Tol's "muted" plus grey for ten
classes; a perceptual ramp for more).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from lab.analysis import AngleStats, nearest_off_diagonal, unit_rows

TOL_MUTED = (
    "#CC6677",
    "#332288",
    "#DDCC77",
    "#117733",
    "#88CCEE",
    "#882255",
    "#44AA99",
    "#999933",
    "#AA4499",
    "#7F7F7F",
)
FONT = dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=12)
JITTER = 0.06


def class_colours(n_classes: int) -> list[str]:
    if n_classes <= len(TOL_MUTED):
        return list(TOL_MUTED[:n_classes])
    return sample_colorscale("Turbo", [i / max(n_classes - 1, 1) for i in range(n_classes)])


def _layout(fig: go.Figure, title: str | None = None, height: int = 380, legend: bool = True) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0.02, font=dict(size=14)) if title else None,
        height=height,
        margin=dict(l=10, r=10, t=(40 if title else 10) + (24 if legend else 0), b=10),
        font=FONT,
        showlegend=legend,
        legend=dict(itemsizing="constant", font=dict(size=11), orientation="h", yanchor="bottom", y=1.0, x=0),
        plot_bgcolor="white",
        paper_bgcolor="white",
    )
    return fig


def _hover(class_names: Sequence[str], labels: np.ndarray, indices: np.ndarray) -> list[str]:
    return [f"image {i}<br>class {class_names[c]}" for i, c in zip(indices, labels, strict=True)]


def _radial_jitter(n: int, seed: int = 0) -> np.ndarray:
    """Radii just inside the unit circle so overlapping points stay visible; angles stay exact."""
    return 1.0 - JITTER * np.random.default_rng(seed).random(n)


def feature_scatter(
    features: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    indices: np.ndarray | None = None,
    directions: np.ndarray | None = None,
    normalised: bool = True,
    title: str | None = None,
    height: int = 380,
    legend: bool = True,
) -> go.Figure:
    """Features of a 2-D or 3-D head: on the unit circle/sphere (``normalised``) or as they are,
    coloured by class, with class directions drawn as rays from the origin."""
    dim = features.shape[1]
    if dim not in (2, 3):
        raise ValueError(f"feature_scatter draws 2-D or 3-D features, got {dim}-D; use projection_scatter")
    labels = np.asarray(labels)
    indices = np.arange(len(labels)) if indices is None else np.asarray(indices)
    points = unit_rows(features) * _radial_jitter(len(features))[:, None] if normalised else np.asarray(features)
    reach = 1.18 if normalised else float(np.percentile(np.linalg.norm(features, axis=1), 95)) * 1.1
    colours = class_colours(len(class_names))
    fig = go.Figure()
    if normalised and dim == 2:
        t = np.linspace(0, 2 * np.pi, 241)
        fig.add_trace(
            go.Scatter(
                x=np.cos(t),
                y=np.sin(t),
                mode="lines",
                line=dict(color="#BBBBBB", width=1),
                hoverinfo="skip",
                showlegend=False,
            )
        )
    if normalised and dim == 3:
        u, v = np.mgrid[0 : 2 * np.pi : 40j, 0 : np.pi : 20j]
        fig.add_trace(
            go.Surface(
                x=np.cos(u) * np.sin(v),
                y=np.sin(u) * np.sin(v),
                z=np.cos(v),
                opacity=0.12,
                showscale=False,
                colorscale=[[0, "#DDDDDD"], [1, "#DDDDDD"]],
                hoverinfo="skip",
            )
        )
    for c, name in enumerate(class_names):
        mask = labels == c
        if not mask.any():
            continue
        hover = _hover(class_names, labels[mask], indices[mask])
        marker = dict(color=colours[c], size=5 if dim == 2 else 3, opacity=0.75)
        coords = dict(x=points[mask, 0], y=points[mask, 1])
        if dim == 2:
            fig.add_trace(
                go.Scatter(
                    **coords,
                    mode="markers",
                    marker=marker,
                    name=str(name),
                    legendgroup=str(c),
                    customdata=indices[mask],
                    hovertext=hover,
                    hoverinfo="text",
                )
            )
        else:
            fig.add_trace(
                go.Scatter3d(
                    **coords,
                    z=points[mask, 2],
                    mode="markers",
                    marker=marker,
                    name=str(name),
                    legendgroup=str(c),
                    customdata=indices[mask],
                    hovertext=hover,
                    hoverinfo="text",
                )
            )
    if directions is not None:
        _add_rays(fig, np.asarray(directions), reach, colours, class_names, dim)
    if dim == 2:
        fig.update_xaxes(visible=False, range=[-reach * 1.05, reach * 1.05] if normalised else None)
        fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=1)
    else:
        axis = dict(visible=False)
        fig.update_layout(scene=dict(xaxis=axis, yaxis=axis, zaxis=axis, aspectmode="data"))
    return _layout(fig, title, height, legend)


def _add_rays(
    fig: go.Figure, directions: np.ndarray, reach: float, colours: list[str], class_names: Sequence[str], dim: int
) -> None:
    tips = unit_rows(directions) * reach
    for c, tip in enumerate(tips):
        style = dict(
            mode="lines",
            line=dict(color=colours[c], width=4 if dim == 3 else 2.5),
            legendgroup=str(c),
            showlegend=False,
            hovertext=f"class direction: {class_names[c]}",
            hoverinfo="text",
        )
        if dim == 2:
            fig.add_trace(go.Scatter(x=[0, tip[0]], y=[0, tip[1]], **style))
        else:
            fig.add_trace(go.Scatter3d(x=[0, tip[0]], y=[0, tip[1]], z=[0, tip[2]], **style))


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
) -> go.Figure:
    """A 2-D scatter of projected points (UMAP, PCA), coloured by class."""
    labels = np.asarray(labels)
    indices = np.arange(len(labels)) if indices is None else np.asarray(indices)
    colours = class_colours(len(class_names))
    fig = go.Figure()
    for c, name in enumerate(class_names):
        mask = labels == c
        if mask.any():
            fig.add_trace(
                go.Scatter(
                    x=coords[mask, 0],
                    y=coords[mask, 1],
                    mode="markers",
                    name=str(name),
                    marker=dict(color=colours[c], size=5, opacity=0.75),
                    customdata=indices[mask],
                    hovertext=_hover(class_names, labels[mask], indices[mask]),
                    hoverinfo="text",
                )
            )
    fig.update_xaxes(title=axis_titles[0], showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(title=axis_titles[1], showticklabels=False, showgrid=False, zeroline=False)
    return _layout(fig, title, height, legend)


def _histogram(fig: go.Figure, values: np.ndarray, name: str, colour: str, bins: np.ndarray) -> None:
    counts, edges = np.histogram(values, bins=bins)
    share = counts / max(len(values), 1)
    fig.add_trace(
        go.Bar(
            x=(edges[:-1] + edges[1:]) / 2,
            y=share,
            width=np.diff(edges),
            name=name,
            marker=dict(color=colour, opacity=0.6, line=dict(width=0)),
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
    """Overlaid histograms of angles in degrees (3-degree bins over 0-180), one per (values, name, colour)."""
    bins = np.linspace(0, 180, 61)
    fig = go.Figure()
    for values, name, colour in series:
        _histogram(fig, values, name, colour, bins)
    fig.update_layout(barmode="overlay", bargap=0)
    fig.update_xaxes(title=x_title, range=[0, 180], dtick=30, gridcolor="#EEEEEE")
    fig.update_yaxes(title=y_title, gridcolor="#EEEEEE", tickformat=".0%")
    _layout(fig, title, height, legend=False)
    # inside the plot, top right, where angle histograms are thin: a legend above a narrow chart wraps onto the title
    legend = dict(x=0.99, xanchor="right", y=0.99, yanchor="top", bgcolor="rgba(255,255,255,0.85)", font=dict(size=11))
    return fig.update_layout(showlegend=True, legend=legend)


def direction_spacing(
    direction_angles: np.ndarray, class_names: Sequence[str], best: float, title: str | None = None, height: int = 300
) -> go.Figure:
    """Each class direction's angle to its nearest neighbour direction, against the best possible."""
    nearest = nearest_off_diagonal(direction_angles)
    colours = class_colours(len(class_names))
    fig = go.Figure(
        go.Bar(
            x=[str(n) for n in class_names],
            y=nearest,
            marker_color=colours,
            name="nearest direction",
            hovertemplate="%{x}: %{y:.1f}°<extra></extra>",
        )
    )
    fig.add_hline(
        y=best,
        line=dict(color="#333333", dash="dash"),
        annotation_text=f"best possible {best:.1f}°",
        annotation_position="top left",
    )
    fig.update_yaxes(
        title="angle to nearest class (deg)", range=[0, max(best, float(nearest.max())) * 1.15], gridcolor="#EEEEEE"
    )
    return _layout(fig, title, height, legend=False)


def training_curves(
    histories: dict[str, list[dict]], key: str, title: str, height: int = 280, percent: bool = False
) -> go.Figure:
    """One line per loss of a per-epoch metric (e.g. train_loss, test_acc)."""
    fig = go.Figure()
    for i, (name, history) in enumerate(histories.items()):
        if history:
            fig.add_trace(
                go.Scatter(
                    x=[m["epoch"] for m in history],
                    y=[m[key] for m in history],
                    name=name,
                    mode="lines+markers",
                    line=dict(color=TOL_MUTED[i % len(TOL_MUTED)], width=2),
                    marker=dict(size=5),
                )
            )
    fig.update_xaxes(
        title="epoch",
        gridcolor="#EEEEEE",
        rangemode="tozero",
        dtick=max(1, len(max(histories.values(), key=len, default=[])) // 10),
    )
    fig.update_yaxes(gridcolor="#EEEEEE", tickformat=".0%" if percent else None)
    return _layout(fig, title, height)


def metric_bars(values: dict[str, float], title: str, height: int = 240, percent: bool = False) -> go.Figure:
    """One bar per loss for a single metric of the Compare page."""
    names = list(values)
    fig = go.Figure(
        go.Bar(
            x=names,
            y=[values[n] for n in names],
            marker_color=[TOL_MUTED[i % len(TOL_MUTED)] for i in range(len(names))],
            text=[f"{values[n]:.1%}" if percent else f"{values[n]:.2f}" for n in names],
            textposition="outside",
            cliponaxis=False,
        )
    )
    fig.update_yaxes(gridcolor="#EEEEEE", tickformat=".0%" if percent else None, rangemode="tozero")
    return _layout(fig, title, height, legend=False)
