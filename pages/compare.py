"""Compare: one table and small charts across the experiment's losses, and the exports."""

from __future__ import annotations

import functools

import streamlit as st

import ui
from lab import figures
from lab.export import projector_bundle, run_zip
from ui import cams, health, layout, loaders, session, titles

ui.run_inside_app()

st.title("Compare")
records = session.selected_runs(viewable_only=False)
runs = [record for record, _ in health.loaded_runs_or_stop()]

margin = 10.0
dataset = loaders.dataset_of(runs[0])
probe = cams.pick_images(dataset.test.labels.numpy(), [], "random", cams.FAITHFULNESS_IMAGES, seed=0)
with st.spinner("Scoring Grad-CAM faithfulness..."):
    faithfulness = {
        record.run_id: cams.cams(record, dataset.test.images[probe].numpy(), None, "GradCAM", "predicted")
        for record in runs
    }
rows = []
for record in records:
    row = {"loss": titles.loss_label(record), "status": record.state}
    if record in runs:
        numbers = loaders.summary(record, margin)
        row |= {
            "test accuracy": numbers["test_acc"],
            "training time (s)": record.status.get("train_seconds"),
            "within-class angle (°)": numbers["mean_within_class_angle"],
            "min between-class angle (°)": numbers["min_between_class_angle"],
            "cosine silhouette": numbers["cosine_silhouette"],
            "k-NN accuracy": numbers["knn_accuracy"],
            "Grad-CAM faithfulness": float(faithfulness[record.run_id].faithfulness.mean()),
        }
    rows.append(row)

st.dataframe(
    rows,
    hide_index=True,
    column_config={
        "test accuracy": st.column_config.NumberColumn(format="percent"),
        "k-NN accuracy": st.column_config.NumberColumn(format="percent", help="Leave-one-out 5-NN, cosine similarity"),
        "Grad-CAM faithfulness": st.column_config.NumberColumn(
            format="%+.3f", help=f"Mean ROAD score of GradCAM maps on {cams.FAITHFULNESS_IMAGES} seeded test images"
        ),
        "training time (s)": st.column_config.NumberColumn(format="%.1f"),
        "within-class angle (°)": st.column_config.NumberColumn(format="%.1f"),
        "min between-class angle (°)": st.column_config.NumberColumn(format="%.1f"),
        "cosine silhouette": st.column_config.NumberColumn(format="%.3f", help="-1 to 1; higher is better separated"),
    },
)
random_baseline = sum(float(f.random_faithfulness.mean()) for f in faithfulness.values()) / len(faithfulness)
st.caption(
    "Accuracy and angles on the full test set; angles are between unit-normalised features and class mean "
    f"directions. Grad-CAM faithfulness: ROAD, higher is more faithful; random maps score {random_baseline:+.3f}."
)

viewable = [row for row in rows if "test accuracy" in row]
charts = [
    ("test accuracy", True),
    ("within-class angle (°)", False),
    ("min between-class angle (°)", False),
    ("cosine silhouette", False),
]
for column, (metric, percent) in layout.grid(charts, per_row=4):
    values = {row["loss"]: row[metric] for row in viewable}
    column.plotly_chart(figures.metric_bars(values, metric, percent=percent), key=f"bars-{metric}")

st.subheader("Export")
st.caption(
    "A run as a zip (config, metrics, safetensors weights and features), or its features for the TensorFlow "
    "Embedding Projector (load the folder at projector.tensorflow.org; leave *Sphereize data* off)."
)
for column, record in layout.grid(runs, per_row=5):
    with column:
        st.markdown(f"**{titles.loss_label(record)}**")
        st.download_button(
            "Run (.zip)",
            functools.partial(run_zip, session.run_store(), record.run_id),
            f"{record.run_id}.zip",
            mime="application/zip",
            key=f"zip-{record.run_id}",
            on_click="ignore",
            icon=":material/download:",
        )
        st.download_button(
            "Projector (.zip)",
            functools.partial(projector_bundle, session.run_store(), record.run_id, dataset),
            f"{record.run_id}-projector.zip",
            mime="application/zip",
            key=f"proj-{record.run_id}",
            on_click="ignore",
            icon=":material/scatter_plot:",
        )
