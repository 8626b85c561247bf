"""The feature-space figures: features on the unit circle or sphere with their class directions, a frame per
epoch with its own title and a Play control, decision-region shading, and 2-D projections (UMAP, PCA).

Every scatter carries the test-set image index in ``customdata`` so a page can map a selected point back to
its image.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from lab.analysis.geometry import unit_rows
from lab.analysis.playground import sphere_points
from lab.figures.style import BAND_COLOR, REGION_ALPHA, class_colors, discrete_scale, on_white, rgba_text, styled

JITTER = 0.06
UNIT_REACH = 1.18  # class-direction rays end a little outside the unit circle or sphere
GRATICULE_DEG = 30  # the unit sphere's parallels and meridians
SPHERE_CAMERA = dict(eye=dict(x=0.88, y=0.88, z=0.52), center=dict(x=0, y=0, z=-0.03))  # the sphere fills its panel


def _hover(class_names: Sequence[str], labels: np.ndarray, indices: np.ndarray) -> list[str]:
    return [f"image {i}<br>class {class_names[c]}" for i, c in zip(indices, labels, strict=True)]


def _radial_jitter(n: int, seed: int = 0) -> np.ndarray:
    """Radii just inside the unit circle so overlapping points stay visible; angles stay exact."""
    return 1.0 - JITTER * np.random.default_rng(seed).random(n)


def longitude_latitude(points: np.ndarray) -> np.ndarray:
    """Longitude and latitude in degrees of 3-D points (their directions), the sphere map's coordinates."""
    unit = unit_rows(points)
    return np.degrees(np.stack([np.arctan2(unit[:, 1], unit[:, 0]), np.arcsin(np.clip(unit[:, 2], -1, 1))], axis=1))


# ---------------------------------------------------------------- feature space


@dataclasses.dataclass(frozen=True)
class Shading:
    """Decision regions to shade: the class the classifier decides for at each grid point and the margin
    band (None: no margin). ``classes`` is 1-D on :func:`lab.analysis.playground.circle_points`, 2-D on
    :func:`lab.analysis.playground.sphere_points` (latitude x longitude), or 2-D over a square plane grid whose
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
            traces.append(_filled(xs, ys, rgba_text(colors[c], REGION_ALPHA), f"region {c}"))
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
        scale = discrete_scale([on_white(c, 0.35) for c in colors] + ["rgb(150, 150, 150)"])
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
    region_scale = discrete_scale([rgba_text(c, REGION_ALPHA) for c in colors])
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


def point_traces(
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
        # dictionaries, checked once by the figure they go into (a trace object would be checked again there)
        if three_d:
            traces.append(dict(type="scatter3d", x=points[mask, 0], y=points[mask, 1], z=points[mask, 2], **common))
        else:
            traces.append(dict(type="scatter", x=points[mask, 0], y=points[mask, 1], **common))
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
                dict(
                    type="scatter",
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
            traces.append(dict(type="scatter", x=[0, tip[0]], y=[0, tip[1]], **style))
        else:
            traces.append(dict(type="scatter3d", x=[0, tip[0]], y=[0, tip[1]], z=[0, tip[2]], **style))
    return traces


def highlight_trace(point: np.ndarray, three_d: bool) -> go.BaseTraceType:
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
        traces += point_traces(points, labels, indices, class_names, colors, three_d)
        if has_rays:
            directions = frame.directions if frame.directions is not None else first.directions
            traces += _ray_traces(directions, reach, colors, class_names, view, dim)
        if row is not None:
            traces.append(highlight_trace(points[row], three_d))
        return traces

    static = _static_traces(view, dim, shaded)
    data = static + dynamic(first)
    animation = []
    if len(frames) > 1:
        moving = list(range(len(static), len(data)))
        # plain dictionaries, checked once by the figure: a go.Frame checks its traces again, and so does the
        # figure it is given to, which made the frames most of a 3-D panel's build
        animation = [
            dict(
                name=str(f.epoch),
                data=[_moved(trace) for trace in dynamic(f)],
                traces=moving,
                layout=dict(title=dict(text=f.title)),
            )
            for f in frames
        ]
    fig = go.Figure(data=data, frames=animation)
    if animation:
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
    styled(fig, first.title, height, legend)
    if three_d:
        fig.update_layout(margin=dict(l=0, r=0, b=0))
    if len(frames) > 1 and view == "map":  # below the longitude ticks
        fig.update_layout(margin_b=56)
        fig.layout.updatemenus[0].y = -0.1
    elif len(frames) > 1:
        fig.update_layout(margin_b=30)
    return fig


def _moved(trace: dict | go.BaseTraceType) -> dict:
    """A trace as an animation frame carries it: a point trace without its images' indices and hover texts,
    which every frame shares (plotly merges a frame into the trace it updates, so they stay; they were over
    half of a 3-D panel's bytes)."""
    if not isinstance(trace, dict):
        return trace.to_plotly_json()
    if "customdata" not in trace:
        return trace
    return {key: value for key, value in trace.items() if key not in ("customdata", "hovertext")}


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


# ---------------------------------------------------------------- angles


# ---------------------------------------------------------------- curves and bars


# ---------------------------------------------------------------- the loss playground
