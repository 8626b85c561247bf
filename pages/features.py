"""Feature space: every loss's features side by side, on the unit circle or sphere, raw, or projected,
epoch by epoch from before training, with the decision regions, and the picked image next to them."""

from __future__ import annotations

import textwrap

import numpy as np
import plotly.graph_objects as go
import streamlit as st

import ui
from lab import datasets, figures
from lab.analysis import wording
from lab.runs.record import RunRecord
from lab.shown_text import plotly_text
from ui import health, layout, lessons, loaders, regions, seeds, titles
from ui.text import plain

PANELS_PER_ROW = 2  # beside the image panel: three would leave each loss a 260-pixel chart at 1440 pixels
PANEL_HEIGHT = {2: 360, 3: 380}  # pixels, by feature dimension
PRESENTED_HEIGHT = 700  # pixels as drawn in presentation mode: two panels side by side fill a 1920 x 1080 screen
TITLE_WIDTH = 30  # characters of a loss's name per title line
PRESENTED_TITLE_WIDTH = 48  # in presentation mode's wider panels
OLD_RUN_NOTE = "saved before runs stored each epoch's class directions: the rays are the final ones at every epoch."
VIEWS = {"unit": "Unit {shape}", "raw": "Raw", "map": "Map"}

ui.run_inside_app()

st.title("Feature space")
every_seed = health.loaded_runs_or_stop()
loaded = seeds.one_seed(every_seed)  # one training seed at a time
runs = [record for record, _ in loaded]

# The registry's class names, not the loaded dataset's: the page must draw with only the run files,
# and loading the dataset here would download it on a machine that lacks it.
class_names = datasets.info(runs[0].config.dataset).class_names
feat_dim = runs[0].config.feat_dim
picked = layout.picked_image()
presenting = layout.presenting()
panels_col, inspect_col = st.columns([4.2 if presenting else 3, 1], gap="medium")


def label_of(item: tuple) -> str:
    return titles.loss_label(item[0])


def panel_title(record, detail: str, width: int = TITLE_WIDTH) -> str:
    """The loss, wrapped to fit a panel beside the Play buttons, over ``detail``, all in bold: Streamlit draws
    a figure's title in bold, and an animation frame's title (which it never sees) must look the same."""
    lines = textwrap.wrap(titles.loss_label(record), width) or [""]
    return "<b>" + "<br>".join([*map(plotly_text, lines), detail]) + "</b>"


def frame_title(record, arrays: loaders.RunArrays, row: int, width: int) -> str:
    """The panel title after the epoch in ``row``: the loss, the epoch and that epoch's accuracy, named by
    what it was measured on (the run's test accuracy where the frame shows the final weights)."""
    epoch = int(arrays.snapshot_epochs[row])
    final = row == len(arrays.snapshot_epochs) - 1 and record.state == "finished"
    accuracy = None if arrays.snapshot_accuracy is None else float(arrays.snapshot_accuracy[row])
    images = len(arrays.snapshot_indices) if epoch == 0 else wording.eval_images(record, epoch)
    detail = wording.frame_accuracy(
        epoch, accuracy, images, len(arrays.labels), wording.test_accuracy(record) if final else None
    )
    return panel_title(record, detail, width)


def directions_at(arrays: loaders.RunArrays, row: int) -> np.ndarray | None:
    if arrays.snapshot_directions is not None:
        return arrays.snapshot_directions[row]
    return arrays.directions


def same_ray_note(record: RunRecord, arrays: loaders.RunArrays, row: int, shape: str) -> str:
    """A sentence naming the classes whose directions coincide at the epoch in ``row`` (one ray on the unit
    view) and what that means for this run's head; the share it confuses is measured on that epoch's
    features where its directions are that epoch's too."""
    same_epoch = arrays.snapshot_directions is not None or row == len(arrays.snapshot_epochs) - 1
    return wording.same_ray_note(
        directions_at(arrays, row),
        class_names,
        shape,
        titles.loss_label(record),
        wording.decides_by_angle(record.config.loss),
        arrays.snapshots[row] if same_epoch else None,
        arrays.labels[arrays.snapshot_indices],
    )


@st.cache_resource(show_spinner=False, max_entries=64)
def panel_figure(
    _record: RunRecord,
    _arrays: loaders.RunArrays,
    key: tuple[str, float],
    view: str,
    row: int,
    picked: int | None,
    scale: float,
    show_regions: bool,
    height: int,
) -> go.Figure:
    """One loss's panel with every epoch as a frame, opening on ``row``, ``height`` pixels high once scaled
    for presentation mode (whose wider panels take wider title lines). Built once per run, view, epoch, pick,
    scale, shading and height and shared read-only: rebuilding five 3-D panels of a dozen frames each took
    most of a rerun of this page (bench/RESULTS.md)."""
    _regions = regions.run_regions(_record, _arrays, view) if show_regions else None
    frames = [
        figures.FeatureFrame(
            epoch=int(e),
            features=_arrays.snapshots[i],
            directions=directions_at(_arrays, i),
            title=frame_title(_record, _arrays, i, PRESENTED_TITLE_WIDTH if scale != 1 else TITLE_WIDTH),
            shading=_regions.by_epoch[int(e)] if _regions else None,
        )
        for i, e in enumerate(_arrays.snapshot_epochs)
    ]
    fig = figures.feature_figure(
        frames,
        _arrays.labels[_arrays.snapshot_indices],
        datasets.info(_record.config.dataset).class_names,
        indices=_arrays.snapshot_indices,
        view=view,
        start=row,
        highlight=picked,
        height=round(height / scale),
    )
    return figures.scaled(fig, scale).update_layout(height=height)


def start_row(arrays: loaders.RunArrays, epoch: int) -> int:
    """The stored epoch shown for ``epoch``: the latest one at or before it (a run that did not store
    epoch 0 starts at epoch 1)."""
    rows = np.flatnonzero(arrays.snapshot_epochs <= epoch)
    return int(rows[-1]) if len(rows) else 0


picking = presenting and len(loaded) > layout.PRESENTED  # presentation mode: a Left and a Right loss
if feat_dim in (2, 3):
    shape = "circle" if feat_dim == 2 else "sphere"
    view_names = ["unit", "raw"] + (["map"] if feat_dim == 3 else [])
    all_epochs = sorted({int(e) for _, arrays in loaded for e in arrays.snapshot_epochs})
    with panels_col:
        controls = st.columns([1.7, 1.7, 2.1, 2.1, 1.5] if picking else [2.6, 2.2, 1.6])
        shown = layout.shown(loaded, label_of, key="feature_loss", where=controls[:2])
        view_col, epoch_col, regions_col = controls[-3:]
        view = (
            view_col.segmented_control(
                "View",
                view_names,
                default="unit",
                format_func=lambda v: VIEWS[v].format(shape=shape),
                key="feature_view",
                help="Unit: each feature's direction only (what an angular loss looks at). Raw: the features as the "
                "network makes them. Map (3-D): the sphere unrolled flat, longitude across and latitude up, where a "
                "click picks a point.",
            )
            or "unit"
        )
        epoch = all_epochs[-1]
        if len(all_epochs) > 1:
            epoch = epoch_col.slider(
                "Epoch",
                all_epochs[0],
                all_epochs[-1],
                all_epochs[-1],
                key="feature_epoch",
                help="0 is before training. Every panel shows this epoch. ▶ Play on a panel animates it from before "
                "training (❚❚ pauses, ▶ goes on).",
            )
        show_regions = regions_col.toggle(
            "Decision regions",
            key="feature_regions",
            help="Shade the part of the space each class gets from the trained classifier (the argmax of its "
            "inference logits), and in grey the band a margin loss reserves around each boundary.",
        )
        notes: dict[str, list[str]] = {}  # a note under the charts, and the losses it is about
        chart_scale = layout.presentation_scale()
        height = PRESENTED_HEIGHT if presenting else PANEL_HEIGHT[feat_dim]
        if presenting:  # above the panels, where a projector's screen still shows it
            layout.class_legend(class_names)
        for column, (record, arrays) in layout.grid(shown, layout.per_row(PANELS_PER_ROW)):
            found = regions.run_regions(record, arrays, view) if show_regions else None
            row = start_row(arrays, epoch)
            fig = panel_figure(
                record, arrays, loaders.cache_key(record), view, row, picked, chart_scale, show_regions, height
            )
            key = f"features-{record.run_id}-{view}"
            if feat_dim == 2 or view == "map":
                layout.pickable_chart(column, fig, key, layout.pick_image, scale=1)
            else:
                layout.chart(column, fig, key, scale=1)
            label = plain(titles.loss_label(record))
            if view != "raw":
                note = same_ray_note(record, arrays, row, shape)
                if note:
                    column.caption(
                        f":material/call_merge: {plain(note)}", help="Class directions within 2° count as one."
                    )
            if arrays.snapshot_directions is None:
                notes.setdefault(OLD_RUN_NOTE, []).append(label)
            if found is not None:
                notes.setdefault(found.note, []).append(label)
        if not presenting:
            layout.class_legend(class_names)
        how = {
            2: "Click a point to see its image on the right.",
            3: "Drag to turn a sphere. 3-D charts cannot report clicks: pick a point on the Map view or on a "
            "projection below, or type an index on the right.",
        }[feat_dim]
        st.caption(
            f"{len(loaded[0][1].snapshot_indices)} test images, coloured by class; rays: each loss's class "
            f"directions (classifier weights, or centers) at the epoch shown. "
            + (
                "Points sit on the unit circle, their radius jittered slightly so overlaps stay visible; angles are "
                "exact. "
                if view == "unit" and feat_dim == 2
                else ""
            )
            + how
        )
        for note, labels in notes.items():
            st.caption(f"**{', '.join(labels)}**: {note}")
        lessons.draw([record for record, _ in every_seed])

else:
    with panels_col:
        shown = layout.shown(loaded, label_of, key="feature_loss")

with panels_col:
    st.subheader("Projections" if feat_dim in (2, 3) else f"{feat_dim}-D features, projected")
    source_col, method_col = st.columns(2)
    # One choice per kind of head, so each experiment opens on its own kind's default: a 3-D example's
    # "the features" carried over to a 2-D one would ask for five UMAPs where the page offers PCA.
    kind = {2: "2d", 3: "3d"}.get(feat_dim, "wide")
    source = source_col.segmented_control(
        "Of",
        ["features", "penultimate"],
        default="penultimate" if feat_dim == 2 else "features",
        key=f"projection_source_{kind}",
        format_func={"features": "the features", "penultimate": "the penultimate activations"}.get,
    )
    rotation_only = feat_dim == 2 and source == "features"
    methods = ["UMAP"] if rotation_only else ["PCA", "UMAP"]
    method = method_col.segmented_control(
        "Method",
        methods,
        default="UMAP" if rotation_only or feat_dim > 3 else "PCA",
        key=f"projection_method_{kind}_{'umap_only' if rotation_only else 'any'}",
        help="The first UMAP since the app started compiles UMAP's code (about 10 s, with a progress bar); "
        "later ones take seconds. Projections are kept, in memory and in a cache folder that outlasts a restart.",
    )
    if rotation_only:
        st.caption("PCA of a 2-D feature is only a rotation of it (the Raw view above), so only UMAP is offered.")
    if method and source:
        computed = layout.each_with_progress(
            shown, label_of, lambda item, report: loaders.projection(item[0], source, method, report)
        )
        projections = [(record, arrays, *found) for (record, arrays), found in zip(shown, computed, strict=True)]
        for column, (record, arrays, coords, note) in layout.grid(projections, layout.per_row(PANELS_PER_ROW)):
            fig = figures.projection_scatter(
                coords,
                arrays.labels[arrays.snapshot_indices],
                class_names,
                indices=arrays.snapshot_indices,
                title=panel_title(record, note),
                legend=False,
                height=340,
                highlight=picked,
            )
            layout.pickable_chart(column, fig, f"projection-{record.run_id}-{method}-{source}", layout.pick_image)
        layout.class_legend(class_names)

with inspect_col:
    # Imported last: it brings in pytorch-grad-cam, a slow first import the charts above need not wait for.
    from ui import inspector

    inspector.image_panel(loaded, [], per_row=2)
