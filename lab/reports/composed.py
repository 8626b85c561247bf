"""One figure for a paper that puts the losses side by side: a column per loss, titled with the loss and its
test accuracy, its feature space on top and its Grad-CAM maps of the same test images below, one image per
row, with the color bar of the maps and the classes' colors.

Everything is read from the run files: the stored test features (the feature panel), the stored test images
(the maps are of those, so the dataset is not needed), the run's weights and its whole-test-set accuracy.
The feature panel shows what the run's feature width allows: 2-D features on the unit circle, 3-D ones as a
longitude-latitude map of their directions, wider ones as the first two principal components of the
unit-length features (with the share of variance they hold). Each map is on its own 0-to-1 scale, the
Grad-CAM convention; a red frame marks an image that loss's model gets wrong.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from lab import datasets
from lab.analysis import wording
from lab.analysis.geometry import unit_rows
from lab.datasets.images import enlarge, whole_factor
from lab.figures.features import longitude_latitude
from lab.figures.style import class_colors
from lab.figures.variants import wrap_label
from lab.reports.paper import CSS_DPI, FONT_FAMILY, INK, PAGE_INCHES, points_to_px
from lab.runs.record import RunRecord, require_config
from lab.runs.restore import load_trained
from lab.runs.store import RunStore
from lab.settings.experiment import variant_label

FEATURE_POINTS = 1500  # test points per feature panel: enough to show the shape, a PDF that stays small
CELL_MIN_PX = 112  # maps enlarged by a whole factor to at least this, so no viewer smooths 7x7 cells
COLORBAR_STOPS = 16


@dataclasses.dataclass(frozen=True)
class Column:
    """One loss's column: its title, its feature panel's points and labels, and its maps."""

    title: str
    points: np.ndarray  # P x 2
    point_labels: np.ndarray
    axes: tuple[str, str]
    cells: list[np.ndarray]  # one H x W x 3 uint8 overlay per image
    wrong: list[bool]
    dim: int  # the run's feature width


def feature_points(features: np.ndarray) -> tuple[np.ndarray, tuple[str, str]]:
    """2-D positions for a feature panel and its axis titles (see the module docstring)."""
    dim = features.shape[1]
    if dim == 2:
        return unit_rows(features), ("", "")
    if dim == 3:
        return longitude_latitude(features), ("lon-lat map", "")
    from lab.analysis.projection import pca

    coords, ratio = pca(unit_rows(features), 2)
    return coords, (f"PCA of unit features ({ratio[0]:.0%} + {ratio[1]:.0%})", "")


def features_dim(column: Column) -> int:
    """The feature width a panel shows: 2, 3 (a longitude-latitude map) or wider (principal components)."""
    return column.dim


def _subset(n: int, limit: int, seed: int = 0) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def column_title(record: RunRecord, width: int = 24) -> str:
    """The loss (the variant's label, broken into lines of ``width`` characters) and the run's test accuracy
    on the whole test set, with its seed."""
    config = require_config(record)
    accuracy = wording.test_accuracy(record)
    measured = f"{wording.percent_text(accuracy)} test acc." if accuracy is not None else "no test accuracy"
    return f"{wrap_label(plotly_text(variant_label(config)), width)}<br>{measured}<br>seed {config.seed}"


def plotly_text(text: str) -> str:
    """``text`` shown literally by plotly, which reads tags such as ``<b>`` and links in its text (a label from
    a run file or an upload's name is data, not markup)."""
    return html.escape(str(text), quote=False)


def stored_rows(store: RunStore, records: Sequence[RunRecord], n_images: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n_images`` stored test images of ``records[0]`` (uint8 N x C x H x W) and their labels; every
    run of ``records`` must have stored the same ones (the runs of an experiment do)."""
    first = store.load_features(records[0].run_id)
    if first.snapshot_images is None:
        raise ValueError(f"run {records[0].run_id} stores no test images (trained before runs kept them): retrain it")
    images = first.snapshot_images[:n_images].numpy()
    for record in records[1:]:
        stored = store.load_features(record.run_id).snapshot_images
        if stored is None or not np.array_equal(stored[:n_images].numpy(), images):
            raise ValueError(f"run {record.run_id} stored other test images than {records[0].run_id}: no shared rows")
    return images, first.test_labels[first.snapshot_indices[:n_images]].numpy()


def gradcam_columns(
    store: RunStore,
    records: Sequence[RunRecord],
    images: np.ndarray,
    labels: np.ndarray | None,
    method: str = "GradCAM",
    layer: str = "last",
    title_width: int = 24,
) -> list[Column]:
    """Each run's :class:`Column`: its maps of ``images`` (uint8 N x C x H x W; ``labels`` None for images
    without a true class, which are never framed as wrong) and its feature panel."""
    from lab.interpret import gradcam  # pytorch-grad-cam: only when maps are drawn

    columns = []
    for record in records:
        config = require_config(record)
        stored = store.load_features(record.run_id)
        model, head = load_trained(store, record)
        normalized = datasets.normalize(torch.from_numpy(images), *datasets.info(config.dataset).train_statistics)
        with torch.inference_mode():
            logits = head.logits(model(normalized))
        targets = gradcam.resolve_targets(logits, None, "predicted")
        result = gradcam.compute_cams(model, head, normalized, method, targets, layer=layer)
        maps = gradcam.normalize_each(result.maps)
        cells, wrong = [], []
        for i, (image, cam_map) in enumerate(zip(images, maps, strict=True)):
            cell = gradcam.overlay(image, cam_map, 1.0, alpha=0.5)
            miss = labels is not None and int(result.predicted[i]) != int(labels[i])
            cells.append(gradcam.framed(cell) if miss else cell)
            wrong.append(miss)
        features = stored.test_features.numpy()
        keep = _subset(len(features), FEATURE_POINTS)
        points, axes = feature_points(features)
        labels_kept = stored.test_labels.numpy()[keep]
        title = column_title(record, title_width)
        columns.append(Column(title, points[keep], labels_kept, axes, cells, wrong, features.shape[1]))
    return columns


def title_width(n_columns: int, width_inches: float = PAGE_INCHES) -> int:
    """Characters per line of a column title when ``n_columns`` losses share the width beside the images."""
    return int(width_inches * CSS_DPI / (n_columns + 1) / (points_to_px(7.5) * 0.55))


def _colorscale() -> list[list]:
    """The color map the overlays are drawn with (:data:`lab.interpret.gradcam.COLORMAP`), as plotly stops."""
    import matplotlib

    from lab.interpret.gradcam import COLORMAP

    levels = np.linspace(0.0, 1.0, COLORBAR_STOPS)
    rgb = (matplotlib.colormaps[COLORMAP](levels)[:, :3] * 255).round().astype(int)
    return [[float(level), f"rgb({r},{g},{b})"] for level, (r, g, b) in zip(levels, rgb, strict=True)]


def composed_figure(
    images: np.ndarray,
    row_titles: Sequence[str],
    columns: Sequence[Column],
    class_names: Sequence[str],
    method: str = "GradCAM",
    width_inches: float = PAGE_INCHES,
) -> go.Figure:
    """The composed figure (see the module docstring) at ``width_inches``: an image column, then a column
    per loss; the feature panels on the first row, a test image per row below."""
    n_rows, n_cols = 1 + len(images), 1 + len(columns)
    width = width_inches * CSS_DPI
    title_lines = max(column.title.count("<br>") + 1 for column in columns)
    margin = dict(l=14, r=84, t=12 + 12 * title_lines, b=58)
    spacing = 0.012  # of the plotting area, between panels
    cell = (width - margin["l"] - margin["r"]) * (1 - spacing * (n_cols - 1)) / n_cols
    feature_gap = 24  # the feature panels' axis titles under them
    plot_height = (cell * n_rows + feature_gap) / (1 - spacing * (n_rows - 1))
    height = margin["t"] + margin["b"] + plot_height
    titles = ["test image"] + [column.title for column in columns]
    fig = make_subplots(
        rows=n_rows,
        cols=n_cols,
        column_titles=titles,
        horizontal_spacing=spacing,
        vertical_spacing=spacing,
        row_heights=[cell + feature_gap] + [cell] * (n_rows - 1),
    )
    font = points_to_px(7)
    colors = class_colors(len(class_names))
    for c, column in enumerate(columns, start=2):
        for k, name in enumerate(class_names):
            mine = column.point_labels == k
            fig.add_trace(
                go.Scatter(
                    x=column.points[mine, 0],
                    y=column.points[mine, 1],
                    mode="markers",
                    marker=dict(size=2.2, color=colors[k]),
                    name=name,
                    legendgroup=name,
                    showlegend=c == 2,
                    hoverinfo="skip",
                ),
                row=1,
                col=c,
            )
        three_d_map = features_dim(column) == 3
        frame = dict(row=1, col=c, ticks="", showgrid=False, zeroline=False, showline=True, mirror=True, linecolor=INK)
        fig.update_xaxes(
            showticklabels=three_d_map,
            title=dict(text=column.axes[0], font=dict(size=font), standoff=2) if column.axes[0] else None,
            **frame,
        )
        fig.update_yaxes(
            showticklabels=False,
            **frame,
            **({} if three_d_map else dict(scaleanchor=f"x{c if c > 1 else ''}", scaleratio=1)),
        )
        if three_d_map:
            fig.update_yaxes(row=1, col=c, showticklabels=False, range=[-90, 90])
            fig.update_xaxes(row=1, col=c, showticklabels=False, range=[-180, 180])
    factor = whole_factor(images.shape[2], images.shape[3], CELL_MIN_PX)
    for r, (image, row_title) in enumerate(zip(images, row_titles, strict=True), start=2):
        rgb = np.repeat(image, 3, axis=0) if image.shape[0] == 1 else image
        fig.add_trace(go.Image(z=enlarge(rgb.transpose(1, 2, 0), factor), hoverinfo="skip"), row=r, col=1)
        fig.update_yaxes(row=r, col=1, title=dict(text=plotly_text(row_title), font=dict(size=font), standoff=2))
        for c, column in enumerate(columns, start=2):
            fig.add_trace(go.Image(z=enlarge(column.cells[r - 2], factor), hoverinfo="skip"), row=r, col=c)
    for r in range(2, n_rows + 1):
        for c in range(1, n_cols + 1):
            fig.update_xaxes(row=r, col=c, visible=False)
            fig.update_yaxes(row=r, col=c, showticklabels=False, ticks="", showgrid=False, zeroline=False)
    fig.update_xaxes(row=1, col=1, visible=False)
    fig.update_yaxes(row=1, col=1, visible=False)
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            showlegend=False,
            marker=dict(
                colorscale=_colorscale(),
                cmin=0,
                cmax=1,
                color=[0],
                showscale=True,
                colorbar=dict(
                    title=dict(text=f"{method}<br>(each map<br>0 to 1)", font=dict(size=font)),
                    tickvals=[0, 0.5, 1],
                    tickfont=dict(size=font),
                    len=(n_rows - 1) / n_rows,
                    y=0,
                    yanchor="bottom",
                    thickness=10,
                    x=1.01,
                ),
            ),
        ),
        row=2,
        col=2,
    )
    fig.update_layout(
        width=round(width),
        height=round(height),
        margin=margin,
        font=dict(family=FONT_FAMILY, size=font, color=INK),
        paper_bgcolor="white",
        plot_bgcolor="white",
        legend=dict(
            orientation="h",
            x=0,
            y=0,
            yanchor="top",
            itemsizing="constant",
            font=dict(size=font),
            entrywidth=0,
            tracegroupgap=0,
        ),
    )
    for annotation in fig.layout.annotations:  # the column titles
        annotation.font = dict(size=points_to_px(7.5), color=INK, family=FONT_FAMILY)
    return fig


def experiment_figure(
    store: RunStore,
    records: Sequence[RunRecord],
    n_images: int = 4,
    method: str = "GradCAM",
    layer: str = "last",
) -> go.Figure:
    """The composed figure of ``records`` (one run per loss, one seed: the first seed every variant finished)
    on the first ``n_images`` stored test images, each row titled with its true class."""
    chosen = one_seed(records)
    images, labels = stored_rows(store, chosen, n_images)
    class_names = datasets.info(require_config(chosen[0]).dataset).class_names
    columns = gradcam_columns(store, chosen, images, labels, method, layer, title_width(len(chosen)))
    return composed_figure(images, [str(class_names[int(label)]) for label in labels], columns, class_names, method)


def one_seed(records: Sequence[RunRecord]) -> list[RunRecord]:
    """One finished run per variant, all of the lowest seed that every variant finished (else each variant's
    lowest finished seed), in the order the variants first appear."""
    finished = [r for r in records if r.state == "finished" and r.config is not None]
    by_variant: dict[str, dict[int, RunRecord]] = {}
    for record in finished:
        by_variant.setdefault(variant_label(record.config), {}).setdefault(record.config.seed, record)
    if not by_variant:
        raise ValueError("no finished run to draw")
    shared = set.intersection(*(set(seeds) for seeds in by_variant.values()))
    if shared:
        seed = min(shared)
        return [runs[seed] for runs in by_variant.values()]
    return [runs[min(runs)] for runs in by_variant.values()]
