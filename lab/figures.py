"""Plotly figure builders: plain data in, a ``go.Figure`` out. No Streamlit, no I/O.

Every scatter carries the test-set image index in ``customdata`` so a page can map a selected point
back to its image. Classes use a colour-blind-safe palette (Paul Tol's "muted" plus grey for ten
classes; a perceptual ramp for more); losses use Tol's "vibrant" palette, so a loss is never drawn in
a class's colour. :func:`scaled` enlarges any figure for a projector.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import hex_to_rgb, sample_colorscale

from lab.analysis import AngleStats, nearest_off_diagonal, unit_rows
from lab.playground import LossField, sphere_points
from lab.shown_text import plotly_text

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
LOSS_COLORS = ("#0077BB", "#EE7733", "#009988", "#EE3377", "#33BBEE", "#CC3311", "#555555", "#BBBBBB")
BAR_COLOR = "#4A5A70"  # single-metric bars: the x axis names the loss, colour would only repeat it
BAND_COLOR = "rgba(60, 60, 60, 0.22)"
REGION_ALPHA = 0.16
FONT = dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=12)
PROJECTOR_INK = "#111111"  # every text of a figure in presentation mode
JITTER = 0.06
UNIT_REACH = 1.18  # class-direction rays end a little outside the unit circle or sphere
GRATICULE_DEG = 30  # the unit sphere's parallels and meridians
SPHERE_CAMERA = dict(eye=dict(x=0.88, y=0.88, z=0.52), center=dict(x=0, y=0, z=-0.03))  # the sphere fills its panel


def class_colors(n_classes: int) -> list[str]:
    if n_classes <= len(TOL_MUTED):
        return list(TOL_MUTED[:n_classes])
    return sample_colorscale("Turbo", [i / max(n_classes - 1, 1) for i in range(n_classes)])


def loss_colors(n_losses: int) -> list[str]:
    return [LOSS_COLORS[i % len(LOSS_COLORS)] for i in range(n_losses)]


def _rgba(color: str, alpha: float) -> str:
    if color.startswith("#"):
        red, green, blue = hex_to_rgb(color)
    else:  # "rgb(r, g, b)" from sample_colorscale
        red, green, blue = (int(float(v)) for v in color[color.index("(") + 1 : -1].split(",")[:3])
    return f"rgba({red}, {green}, {blue}, {alpha})"


def _on_white(color: str, alpha: float) -> str:
    """``color`` at opacity ``alpha`` over white, as an opaque colour (3-D surfaces blend badly when see-through)."""
    red, green, blue = (int(v) for v in _rgba(color, 1).removeprefix("rgba(").split(",")[:3])
    mix = [round(alpha * v + (1 - alpha) * 255) for v in (red, green, blue)]
    return f"rgb({mix[0]}, {mix[1]}, {mix[2]})"


def _layout(fig: go.Figure, title: str | None = None, height: int = 380, legend: bool = True) -> go.Figure:
    lines = title.count("<br>") + 1 if title else 0
    fig.update_layout(
        title=dict(text=title, x=0.02, font=dict(size=14)) if title else None,
        height=height,
        margin=dict(l=10, r=10, t=(22 + 18 * lines if title else 10) + (24 if legend else 0), b=10),
        font=FONT,
        showlegend=legend,
        legend=dict(itemsizing="constant", font=dict(size=11), orientation="h", yanchor="bottom", y=1.0, x=0),
        plot_bgcolor="white",
        paper_bgcolor="white",
    )
    return fig


def _scale_trace(trace: go.BaseTraceType | dict, scale: float) -> None:
    for part in ("marker", "line"):
        style = trace[part] if part in trace else None
        if style is None:
            continue
        for attribute in ("size", "width"):
            value = style[attribute] if attribute in style else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                style[attribute] = value * scale


def scaled(fig: go.Figure, scale: float) -> go.Figure:
    """``fig`` with its fonts, markers, lines, margins and height multiplied by ``scale`` and its text in
    :data:`PROJECTOR_INK` (presentation mode: a projector washes plotly's grey text out); ``scale`` 1
    returns it unchanged."""
    if scale == 1:
        return fig
    layout = fig.layout
    fig.update_layout(font_size=(layout.font.size or FONT["size"]) * scale, font_color=PROJECTOR_INK)
    if layout.height:
        fig.update_layout(height=layout.height * scale)
    if layout.title and layout.title.text:
        fig.update_layout(title_font_size=(layout.title.font.size or 14) * scale, title_font_color=PROJECTOR_INK)
    if layout.legend and layout.legend.font and layout.legend.font.size:
        fig.update_layout(legend_font_size=layout.legend.font.size * scale)
    if layout.margin and layout.margin.t is not None:
        fig.update_layout(margin_t=layout.margin.t * scale, margin_b=(layout.margin.b or 0) * scale)
    for axis in (*fig.select_xaxes(), *fig.select_yaxes()):  # Streamlit's theme gives axes small grey text
        axis.tickfont.size = (axis.tickfont.size or FONT["size"]) * scale
        axis.title.font.size = (axis.title.font.size or FONT["size"]) * scale
        axis.tickfont.color = axis.title.font.color = PROJECTOR_INK
    fig.update_layout(legend_font_color=PROJECTOR_INK)
    for annotation in layout.annotations:
        annotation.font.size = (annotation.font.size or FONT["size"]) * scale
    for menu in layout.updatemenus:
        menu.font.size = (menu.font.size or FONT["size"]) * scale
    for trace in fig.data:
        _scale_trace(trace, scale)
    for frame in fig.frames:  # a frame's title keeps the figure's font: frames only set its text
        for trace in frame.data:
            _scale_trace(trace, scale)
    return fig


def _hover(class_names: Sequence[str], labels: np.ndarray, indices: np.ndarray) -> list[str]:
    return [f"image {i}<br>class {class_names[c]}" for i, c in zip(indices, labels, strict=True)]


def _radial_jitter(n: int, seed: int = 0) -> np.ndarray:
    """Radii just inside the unit circle so overlapping points stay visible; angles stay exact."""
    return 1.0 - JITTER * np.random.default_rng(seed).random(n)


def _discrete_scale(colors: Sequence[str]) -> list[list]:
    """A plotly colour scale that maps the integers 0..n-1 (with cmin -0.5, cmax n-0.5) to ``colors``."""
    n = len(colors)
    scale = []
    for i, color in enumerate(colors):
        scale += [[i / n, color], [(i + 1) / n, color]]
    return scale


def longitude_latitude(points: np.ndarray) -> np.ndarray:
    """Longitude and latitude in degrees of 3-D points (their directions), the sphere map's coordinates."""
    unit = unit_rows(points)
    return np.degrees(np.stack([np.arctan2(unit[:, 1], unit[:, 0]), np.arcsin(np.clip(unit[:, 2], -1, 1))], axis=1))


# ---------------------------------------------------------------- feature space


@dataclasses.dataclass(frozen=True)
class Shading:
    """Decision regions to shade: the class the classifier decides for at each grid point and the margin
    band (None: no margin). ``classes`` is 1-D on :func:`lab.playground.circle_points`, 2-D on
    :func:`lab.playground.sphere_points` (latitude x longitude), or 2-D over a square plane grid whose
    side coordinates are ``axis``."""

    classes: np.ndarray
    band: np.ndarray | None = None
    axis: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class FeatureFrame:
    """What one epoch shows: the subset's features, the class directions, the title and the regions."""

    epoch: int
    features: np.ndarray
    directions: np.ndarray | None
    title: str
    shading: Shading | None = None


def _sector_polygons(selected: np.ndarray, radius: float) -> tuple[list, list]:
    """x and y of filled pie sectors (origin, arc, origin; None between sectors) over the runs of True in
    ``selected``, a mask on :func:`circle_points`."""
    count = len(selected)
    if not selected.any():
        return [], []
    if selected.all():
        t = np.linspace(0, 2 * np.pi, 181)
        return list(radius * np.cos(t)) + [None], list(radius * np.sin(t)) + [None]
    step = 2 * np.pi / count
    start = int(np.flatnonzero(~selected)[0])  # walk from a point outside, so no run wraps around the seam
    order = np.roll(np.arange(count), -start)
    xs: list = []
    ys: list = []
    run: list[int] = []
    for i in [*order, order[0]]:
        if selected[i]:
            run.append(i)
            continue
        if run:
            first = run[0] * step - step / 2
            angles = first + np.linspace(0, len(run) * step, max(2, len(run) // 2 + 2))
            xs += [0.0, *(radius * np.cos(angles)), 0.0, None]
            ys += [0.0, *(radius * np.sin(angles)), 0.0, None]
            run = []
    return xs, ys


def _shading_traces(shading: Shading, view: str, dim: int, colors: list[str], reach: float) -> list:
    n = len(colors)
    if dim == 2 and shading.axis is None:  # sectors of the circle
        traces = []
        for c in range(n):
            xs, ys = _sector_polygons(shading.classes == c, reach)
            traces.append(_filled(xs, ys, _rgba(colors[c], REGION_ALPHA), f"region {c}"))
        band = shading.band if shading.band is not None else np.zeros(len(shading.classes), dtype=bool)
        xs, ys = _sector_polygons(band, reach)
        traces.append(_filled(xs, ys, BAND_COLOR, "margin band"))
        return traces
    if dim == 3 and view == "unit":
        # an opaque globe just inside the points (radius 1 - JITTER), so the front shows and the back is hidden
        grid = sphere_points(shading.classes.shape[1], shading.classes.shape[0]) * (1 - JITTER - 0.02)
        color_index = shading.classes.astype(float)
        if shading.band is not None:
            color_index = np.where(shading.band, n, color_index)
        scale = _discrete_scale([_on_white(c, 0.35) for c in colors] + ["rgb(150, 150, 150)"])
        return [
            go.Surface(
                x=grid[..., 0],
                y=grid[..., 1],
                z=grid[..., 2],
                surfacecolor=color_index,
                colorscale=scale,
                cmin=-0.5,
                cmax=n + 0.5,
                showscale=False,
                hoverinfo="skip",
                lighting=dict(ambient=0.9, diffuse=0.15, specular=0.0),
                name="regions",
            )
        ]
    if view == "map":
        lon_lat = sphere_points(shading.classes.shape[1], shading.classes.shape[0])
        x = np.degrees(np.arctan2(lon_lat[0, :, 1], lon_lat[0, :, 0]))
        x[0], x[-1] = -180.0, 180.0
        y = np.degrees(np.arcsin(np.clip(lon_lat[:, 0, 2], -1, 1)))
    else:
        x = y = shading.axis
    region_scale = _discrete_scale([_rgba(c, REGION_ALPHA) for c in colors])
    traces = [
        go.Heatmap(
            x=x,
            y=y,
            z=shading.classes,
            zmin=-0.5,
            zmax=n - 0.5,
            colorscale=region_scale,
            showscale=False,
            hoverinfo="skip",
            name="regions",
        )
    ]
    band = np.where(shading.band, 1.0, np.nan) if shading.band is not None else np.full(shading.classes.shape, np.nan)
    traces.append(
        go.Heatmap(
            x=x,
            y=y,
            z=band,
            zmin=0,
            zmax=1,
            colorscale=[[0, BAND_COLOR], [1, BAND_COLOR]],
            showscale=False,
            hoverinfo="skip",
            name="margin band",
        )
    )
    return traces


def _filled(xs: list, ys: list, color: str, name: str) -> go.Scatter:
    return go.Scatter(
        x=xs, y=ys, mode="lines", fill="toself", fillcolor=color, line=dict(width=0), hoverinfo="skip", name=name
    )


def _positions(features: np.ndarray, view: str, dim: int) -> np.ndarray:
    if view == "unit":
        return unit_rows(features) * _radial_jitter(len(features))[:, None]
    if view == "map":
        return longitude_latitude(features)
    return np.asarray(features, dtype=np.float64)


def _point_traces(
    points: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    class_names: Sequence[str],
    colors: list[str],
    three_d: bool,
) -> list:
    traces = []
    for c, name in enumerate(class_names):
        mask = labels == c
        marker = dict(color=colors[c], size=3 if three_d else 5, opacity=0.8)
        common = dict(
            mode="markers",
            marker=marker,
            name=str(name),
            legendgroup=str(c),
            customdata=indices[mask],
            hovertext=_hover(class_names, labels[mask], indices[mask]),
            hoverinfo="text",
        )
        if three_d:
            traces.append(go.Scatter3d(x=points[mask, 0], y=points[mask, 1], z=points[mask, 2], **common))
        else:
            traces.append(go.Scatter(x=points[mask, 0], y=points[mask, 1], **common))
    return traces


def _ray_traces(
    directions: np.ndarray, reach: float, colors: list[str], class_names: Sequence[str], view: str, dim: int
) -> list:
    traces = []
    unit = unit_rows(directions)
    for c, direction in enumerate(unit):
        hover = f"class direction: {class_names[c]}"
        if view == "map":
            lon, lat = longitude_latitude(direction[None])[0]
            traces.append(
                go.Scatter(
                    x=[lon],
                    y=[lat],
                    mode="markers",
                    marker=dict(color=colors[c], size=15, symbol="star", line=dict(color="#222222", width=1.2)),
                    hovertext=hover,
                    hoverinfo="text",
                    showlegend=False,
                )
            )
            continue
        tip = direction * reach
        style = dict(
            mode="lines",
            line=dict(color=colors[c], width=5 if dim == 3 else 2.5),
            legendgroup=str(c),
            showlegend=False,
            hovertext=hover,
            hoverinfo="text",
        )
        if dim == 2:
            traces.append(go.Scatter(x=[0, tip[0]], y=[0, tip[1]], **style))
        else:
            traces.append(go.Scatter3d(x=[0, tip[0]], y=[0, tip[1]], z=[0, tip[2]], **style))
    return traces


def _highlight_trace(point: np.ndarray, three_d: bool) -> go.BaseTraceType:
    marker = dict(size=16 if not three_d else 9, color="rgba(0,0,0,0)", line=dict(color="#111111", width=3))
    if three_d:
        marker["symbol"] = "circle-open"
        marker["color"] = "#111111"
    coords = {axis: [value] for axis, value in zip("xyz", point, strict=False)}
    trace = go.Scatter3d if three_d else go.Scatter
    return trace(**coords, mode="markers", marker=marker, hoverinfo="skip", showlegend=False, name="selected")


def _static_traces(view: str, dim: int, shaded: bool) -> list:
    if view == "unit" and dim == 2:
        t = np.linspace(0, 2 * np.pi, 241)
        return [
            go.Scatter(
                x=np.cos(t),
                y=np.sin(t),
                mode="lines",
                line=dict(color="#BBBBBB", width=1),
                hoverinfo="skip",
                showlegend=False,
            )
        ]
    if view == "unit" and dim == 3 and not shaded:
        return [_graticule()]
    return []


def _graticule(step_deg: int = GRATICULE_DEG) -> go.Scatter3d:
    """The unit sphere as parallels and meridians every ``step_deg`` degrees, one trace of lines broken
    by gaps. Lines rather than a translucent surface: angles can be read off them, points behind the
    sphere stay visible, and a browser without graphics hardware draws five such spheres in about a
    quarter of the time (bench/RESULTS.md)."""
    t = np.radians(np.arange(0, 361, 5))
    circles = [
        np.stack([np.cos(lat) * np.cos(t), np.cos(lat) * np.sin(t), np.full_like(t, np.sin(lat))], axis=1)
        for lat in np.radians(np.arange(-90 + step_deg, 90, step_deg))
    ] + [
        np.stack([np.cos(t) * np.cos(lon), np.cos(t) * np.sin(lon), np.sin(t)], axis=1)
        for lon in np.radians(np.arange(0, 180, step_deg))
    ]
    gap = np.full((1, 3), np.nan)  # plotly breaks a line at a missing point
    points = np.concatenate([part for circle in circles for part in (circle, gap)])
    return go.Scatter3d(
        x=points[:, 0],
        y=points[:, 1],
        z=points[:, 2],
        mode="lines",
        line=dict(color="#D0D0D0", width=1),
        hoverinfo="skip",
        showlegend=False,
        connectgaps=False,
    )


def raw_reach(features: Sequence[np.ndarray]) -> float:
    """One axis range for every epoch of the raw view (from each epoch's ``features``), so a playing
    animation keeps its scale."""
    return max(float(np.percentile(np.linalg.norm(f, axis=1), 95)) for f in features) * 1.1


def feature_figure(
    frames: Sequence[FeatureFrame],
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    indices: np.ndarray | None = None,
    view: str = "unit",
    start: int = -1,
    highlight: int | None = None,
    height: int = 380,
    legend: bool = False,
) -> go.Figure:
    """Features of a 2-D or 3-D head, one animation frame per epoch: on the unit circle or sphere
    (``view="unit"``), as they are (``"raw"``) or, in 3-D, as a longitude-latitude map of their
    directions (``"map"``), coloured by class, with the class directions as rays (stars on the map), the
    decision regions and margin band where a frame has them, and the image ``highlight`` (a test-set
    index) ringed. The figure opens on ``frames[start]``; with more than one frame, Play and Pause
    buttons animate them in the browser."""
    first = frames[start]
    dim = first.features.shape[1]
    if dim not in (2, 3):
        raise ValueError(f"feature_figure draws 2-D or 3-D features, got {dim}-D; use projection_scatter")
    if view == "map" and dim != 3:
        raise ValueError("the map view is for 3-D features")
    labels = np.asarray(labels)
    indices = np.arange(len(labels)) if indices is None else np.asarray(indices)
    three_d = dim == 3 and view != "map"
    reach = UNIT_REACH if view == "unit" else raw_reach([f.features for f in frames]) if view == "raw" else 0.0
    colors = class_colors(len(class_names))
    row = None
    if highlight is not None and np.any(indices == highlight):
        row = int(np.flatnonzero(indices == highlight)[0])
    shaded = any(f.shading is not None for f in frames)
    has_rays = any(f.directions is not None for f in frames)

    def dynamic(frame: FeatureFrame) -> list:
        traces = []
        if shaded and not (dim == 3 and view == "raw"):
            shading = frame.shading or next(f.shading for f in frames if f.shading is not None)
            traces += _shading_traces(shading, view, dim, colors, reach)
        points = _positions(frame.features, view, dim)
        traces += _point_traces(points, labels, indices, class_names, colors, three_d)
        if has_rays:
            directions = frame.directions if frame.directions is not None else first.directions
            traces += _ray_traces(directions, reach, colors, class_names, view, dim)
        if row is not None:
            traces.append(_highlight_trace(points[row], three_d))
        return traces

    static = _static_traces(view, dim, shaded)
    fig = go.Figure(static + dynamic(first))
    if len(frames) > 1:
        moving = list(range(len(static), len(fig.data)))
        fig.frames = [
            go.Frame(name=str(f.epoch), data=dynamic(f), traces=moving, layout=dict(title=dict(text=f.title)))
            for f in frames
        ]
        _add_play_pause(fig)
    if dim == 2 or view == "map":
        if view == "map":
            fig.update_xaxes(range=[-180, 180], dtick=90, ticksuffix="°", showgrid=False, zeroline=False)
            fig.update_yaxes(range=[-90, 90], dtick=45, ticksuffix="°", showgrid=False, zeroline=False)
        else:
            fig.update_xaxes(visible=False, range=[-reach * 1.05, reach * 1.05])
            fig.update_yaxes(visible=False, range=[-reach * 1.05, reach * 1.05], scaleanchor="x", scaleratio=1)
    else:
        axis = dict(visible=False, range=[-reach * 1.02, reach * 1.02])
        fig.update_layout(
            scene=dict(
                xaxis=axis,
                yaxis=axis,
                zaxis=axis,
                aspectmode="cube",
                domain=dict(x=[0, 1], y=[0, 1]),
                camera=SPHERE_CAMERA,
            )
        )
    _layout(fig, first.title, height, legend)
    if three_d:
        fig.update_layout(margin=dict(l=0, r=0, b=0))
    if len(frames) > 1 and view == "map":  # below the longitude ticks
        fig.update_layout(margin_b=56)
        fig.layout.updatemenus[0].y = -0.1
    elif len(frames) > 1:
        fig.update_layout(margin_b=30)
    return fig


def _add_play_pause(fig: go.Figure) -> None:
    """Play (from the current epoch, or from the first after the last) and Pause buttons, bottom left.
    Every frame is redrawn whole and never tweened: plotly draws a frame's title (its layout) only on a
    redraw, and a tween moves points along straight lines, off the unit circle between two epochs."""
    play = {
        "frame": {"duration": 700, "redraw": True},
        "fromcurrent": True,
        "transition": {"duration": 0},
        "mode": "immediate",
    }
    pause = {"frame": {"duration": 0, "redraw": False}, "transition": {"duration": 0}, "mode": "immediate"}
    fig.update_layout(
        updatemenus=[
            dict(
                type="buttons",
                direction="left",
                showactive=False,
                x=0.0,
                y=0.0,
                xanchor="left",
                yanchor="top",
                pad=dict(t=2, r=4),
                font=dict(size=12),
                bgcolor="#F4F4F4",
                buttons=[
                    dict(label="▶ Play", method="animate", args=[None, play]),
                    dict(label="❚❚", method="animate", args=[[None], pause]),
                ],
            )
        ]
    )


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
    fig = go.Figure(_point_traces(np.asarray(coords), labels, indices, class_names, colors, three_d=False))
    if highlight is not None and np.any(indices == highlight):
        fig.add_trace(_highlight_trace(np.asarray(coords)[np.flatnonzero(indices == highlight)[0]], False))
    fig.update_xaxes(title=axis_titles[0], showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(title=axis_titles[1], showticklabels=False, showgrid=False, zeroline=False)
    return _layout(fig, title, height, legend)


# ---------------------------------------------------------------- angles


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
    _layout(fig, title, height, legend=False)
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
    return _layout(fig, title, height, legend=False)


# ---------------------------------------------------------------- curves and bars


def training_curves(
    histories: dict[str, list[dict]], key: str, title: str, height: int = 280, percent: bool = False
) -> go.Figure:
    """One line per loss of a per-epoch metric (e.g. train_loss, test_acc); the losses' names are text."""
    fig = go.Figure()
    for color, (name, history) in zip(loss_colors(len(histories)), histories.items(), strict=True):
        if history:
            fig.add_trace(
                go.Scatter(
                    x=[m["epoch"] for m in history],
                    y=[m[key] for m in history],
                    name=plotly_text(name),
                    mode="lines+markers",
                    line=dict(color=color, width=2),
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
    _layout(fig, title, height)
    # a legend of several rows (a run per variant and seed) would climb over the title: the title keeps the
    # top of the frame and pushes the legend and the plot below it
    return fig.update_layout(
        title=dict(yref="container", y=1, yanchor="top", automargin=True, pad=dict(t=8)), margin_t=10
    )


def metric_bars(values: dict[str, float], title: str, height: int | None = None, percent: bool = False) -> go.Figure:
    """One horizontal bar per loss (names can be long) for a single metric of the Compare page. Every bar
    starts at zero, so the bars' lengths compare as their numbers do (an axis zoomed to the values' spread
    drew 86.4% as half of 87.0%); percentages on a 0-100% axis. Each bar carries its value, inside the bar
    when it fits, else just past its end. The losses' names are text."""
    numbers = list(values.values())
    names = [plotly_text(name) for name in values]
    fig = go.Figure(
        go.Bar(
            y=names,
            x=numbers,
            orientation="h",
            marker_color=BAR_COLOR,
            text=[f"{v:.1%}" if percent else f"{v:.2f}" for v in numbers],
            textposition="auto",
            cliponaxis=False,
            hovertemplate="%{y}: %{text}<extra></extra>",
        )
    )
    low, high = min([*numbers, 0.0]), max([*numbers, 0.0])
    if percent:
        fig.update_xaxes(range=[min(low, 0.0), max(high, 1.0)], tickformat=".0%", dtick=0.25)
    else:
        pad = 0.25 * (high - low) or 1.0  # room past the longest bar for a value that does not fit inside
        fig.update_xaxes(range=[low - pad if low < 0 else 0.0, high + pad if high > 0 else 0.0], nticks=4)
    fig.update_xaxes(gridcolor="#EEEEEE", zeroline=True, zerolinecolor="#999999")
    fig.update_yaxes(autorange="reversed", automargin=True)
    _layout(fig, title, height or 70 + 30 * len(names), legend=False)
    return fig.update_layout(margin_r=30)  # room for the last tick's label ("100%") centered on the axis's end


# ---------------------------------------------------------------- the loss playground

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
        fig.add_trace(_highlight_trace(np.asarray(picked), False))
    fig.update_xaxes(range=[-extent, extent], title="feature x", zeroline=False, showgrid=False, constrain="domain")
    fig.update_yaxes(
        range=[-extent, extent], title="feature y", zeroline=False, showgrid=False, scaleanchor="x", scaleratio=1
    )
    fig.update_layout(dragmode="pan")
    return _layout(fig, title, height, legend=False)


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
