"""Compare: one table and small charts across the experiment's losses, and the exports."""

from __future__ import annotations

import streamlit as st

from lab import figures
from ui import layout, state

st.title("Compare")
records = state.selected_runs(viewable_only=False)
runs = [r for r in records if r.state in state.VIEWABLE and r.config is not None and r.error is None]
if not runs:
    layout.no_runs_message()
    st.stop()

margin = 10.0
rows = []
for record in records:
    row = {"loss": state.loss_label(record), "status": record.state}
    if record in runs:
        numbers = state.summary(record, margin)
        row |= {
            "test accuracy": numbers["test_acc"],
            "training time (s)": record.status.get("train_seconds"),
            "within-class angle (°)": numbers["mean_within_class_angle"],
            "min between-class angle (°)": numbers["min_between_class_angle"],
            "cosine silhouette": numbers["cosine_silhouette"],
            "k-NN accuracy": numbers["knn_accuracy"],
        }
    rows.append(row)

st.dataframe(
    rows,
    hide_index=True,
    column_config={
        "test accuracy": st.column_config.NumberColumn(format="percent"),
        "k-NN accuracy": st.column_config.NumberColumn(format="percent", help="Leave-one-out 5-NN, cosine similarity"),
        "training time (s)": st.column_config.NumberColumn(format="%.1f"),
        "within-class angle (°)": st.column_config.NumberColumn(format="%.1f"),
        "min between-class angle (°)": st.column_config.NumberColumn(format="%.1f"),
        "cosine silhouette": st.column_config.NumberColumn(format="%.3f", help="-1 to 1; higher is better separated"),
    },
)
st.caption("All numbers on the full test set. Angles are between unit-normalised features and class mean directions.")

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
