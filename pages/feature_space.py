"""Feature space: every loss's features side by side, on the unit circle or sphere, raw, or projected."""

from __future__ import annotations

import streamlit as st

import ui
from lab import figures
from ui import health, inspect, layout, loaders, titles

ui.run_inside_app()

st.title("Feature space")
loaded = health.loaded_runs_or_stop()
runs = [record for record, _ in loaded]

dataset = loaders.dataset_of(runs[0])
feat_dim = runs[0].config.feat_dim
epochs = min(arrays.last_epoch for _, arrays in loaded)
selected_points: list[int] = []

if feat_dim in (2, 3):
    shape = "circle" if feat_dim == 2 else "sphere"
    view_col, epoch_col = st.columns([2, 3])
    view = view_col.segmented_control(
        "View", [f"Unit {shape}", "Raw features"], default=f"Unit {shape}", key="feature_view"
    )
    epoch = epochs
    if epochs > 1:
        epoch = epoch_col.slider(
            "Epoch",
            1,
            epochs,
            epochs,
            key="feature_epoch",
            help="Each run stored its features after every epoch: slide to watch the space form.",
        )
    st.caption(
        f"{len(loaded[0][1].snapshot_indices)} test images, coloured by class. Rays: each loss's class directions "
        f"(classifier weights or centres) after training. "
        + (
            "Points sit on the unit circle, their radius jittered slightly so overlaps stay visible; angles are exact."
            if view != "Raw features" and feat_dim == 2
            else ""
        )
        + (" Click a point to inspect its image." if feat_dim == 2 else "")
    )
    for column, (record, arrays) in layout.grid(loaded):
        labels = arrays.labels[arrays.snapshot_indices]
        fig = figures.feature_scatter(
            arrays.snapshot(epoch),
            labels,
            dataset.class_names,
            indices=arrays.snapshot_indices,
            directions=arrays.directions,
            normalised=view != "Raw features",
            title=f"{titles.loss_label(record)} · test accuracy {record.status.get('test_acc', 0):.1%}",
            legend=False,
            height=360,
        )
        selected_points += layout.plotly_selectable(
            column, fig, key=f"features-{record.run_id}", selectable=feat_dim == 2
        )
    layout.class_legend(dataset.class_names)

st.subheader("Projections" if feat_dim in (2, 3) else f"{feat_dim}-D features, projected")
method_col, source_col = st.columns(2)
method = method_col.segmented_control(
    "Method",
    ["PCA", "UMAP"],
    default="PCA" if feat_dim <= 3 else "UMAP",
    key="projection_method",
    help="UMAP takes ~25 s the first time this app computes one; results are kept.",
)
source = source_col.segmented_control(
    "Of",
    ["features", "penultimate"],
    default="features",
    key="projection_source",
    format_func={"features": "the features", "penultimate": "the penultimate activations"}.get,
)
if method and source:
    with st.spinner(f"Computing {method}..."):
        projections = [(record, arrays, *loaders.projection(record, source, method)) for record, arrays in loaded]
    for column, (record, arrays, coords, note) in layout.grid(projections):
        labels = arrays.labels[arrays.snapshot_indices]
        fig = figures.projection_scatter(
            coords,
            labels,
            dataset.class_names,
            indices=arrays.snapshot_indices,
            title=f"{titles.loss_label(record)} · {note}",
            legend=False,
            height=340,
        )
        selected_points += layout.plotly_selectable(column, fig, key=f"projection-{record.run_id}-{method}-{source}")
    layout.class_legend(dataset.class_names)

inspect.image_panel(loaded, dataset, selected_points)
