"""Compare: the experiment's variants over their seeds (means, intervals, every seed), figures against a
swept hyperparameter, one table and small charts across the runs, and the exports."""

from __future__ import annotations

import functools

import streamlit as st

import ui
from lab import figures
from lab.analysis import wording
from lab.interpret.verdicts import against_random
from lab.reports.export import run_zip
from lab.reports.html import RUNS_CAPTION
from lab.reports.tables import runs_table
from lab.runs.record import RunRecord
from ui import cams, downloads, health, layout, loaders, session, titles, variant_summary
from ui.text import plain

ui.run_inside_app()

st.title("Compare")
records = session.selected_runs(viewable_only=False)
runs = [record for record, _ in health.loaded_runs_or_stop()]

variants = variant_summary.summaries(records)
seeded = variant_summary.has_seeds(variants)  # several runs per variant: compared by variant, over the seeds
if seeded:
    st.subheader("By variant, over seeds")
    variant_summary.by_variant(variants)
variant_summary.against_swept_settings(variants)
if seeded:
    st.subheader("Every run")


def run_label(record: RunRecord) -> str:
    seed = f" · seed {record.config.seed}" if seeded and record.config is not None else ""
    return titles.loss_label(record) + seed


margin = 10.0
rows = []
for record in records:
    row = {"loss": titles.loss_label(record)}
    if seeded:  # a column of its own: appended to the label, it pushed long names out of their column
        row["seed"] = record.config.seed if record.config is not None else None
    row["status"] = record.state
    if record in runs:
        numbers = loaders.summary(record, margin)
        row |= {
            "test accuracy": wording.percent(wording.test_accuracy(record) or numbers["test_acc"]),
            "training time (s)": record.status.get("train_seconds"),
            "within-class angle (°)": numbers["mean_within_class_angle"],
            "min between-class angle (°)": numbers["min_between_class_angle"],
            "cosine silhouette": numbers["cosine_silhouette"],
            "k-NN accuracy": wording.percent(numbers["knn_accuracy"]),
        }
        scored = cams.cached_metrics(record, "GradCAM", "last", cams.INTERPRET_IMAGES)
        if scored is not None and scored.get("road") is not None:
            road = scored["road"]  # shown only when the Grad-CAM page has scored it: never computed here
            row["Grad-CAM faithfulness"] = f"{road.value:+.3f}: {against_random(road)} ({road.baseline:+.3f})"
    rows.append(row)

# What train_seconds measures (lab.training.loop): runs of an experiment train in lockstep, each taking its own
# step in turn, and each step is timed to the run that takes it.
TRAINING_TIME_HELP = (
    "Training time: seconds this run spent in its own training steps (forward, backward, optimizer step), "
    "summed over its epochs; evaluation and saving are not counted. An experiment's runs train in turns, step by "
    "step, so a run's time leaves out the steps of the runs beside it. On a GPU the steps are queued and waited "
    "for at the end of each epoch, so there a run's time can include queued work of the runs beside it."
)

# short headers (the full name is each column's help) and one decimal for every percentage, so that the
# whole table fits a 1440-pixel screen with the sidebar open
st.dataframe(
    rows,
    hide_index=True,
    column_config={
        "loss": st.column_config.TextColumn("loss"),  # as wide as its longest name: a name is never cut
        "seed": st.column_config.NumberColumn("seed", width="small", help="The run's training seed"),
        "status": st.column_config.TextColumn("status", width="small"),
        "test accuracy": st.column_config.NumberColumn("accuracy", format="%.1f%%", help="Test accuracy"),
        "k-NN accuracy": st.column_config.NumberColumn(
            "k-NN", format="%.1f%%", help="k-NN accuracy: leave-one-out 5-NN, cosine similarity"
        ),
        "Grad-CAM faithfulness": st.column_config.TextColumn(
            "Grad-CAM ROAD",
            help="ROAD faithfulness of GradCAM maps next to random maps' on the same images, once the Grad-CAM "
            "page has scored them",
        ),
        "training time (s)": st.column_config.NumberColumn("time (s)", format="%.1f", help=TRAINING_TIME_HELP),
        "within-class angle (°)": st.column_config.NumberColumn(
            "within (°)", format="%.1f", help="Mean within-class angle: a feature to its class mean"
        ),
        "min between-class angle (°)": st.column_config.NumberColumn(
            "between (°)", format="%.1f", help="Smallest angle between two class means"
        ),
        "cosine silhouette": st.column_config.NumberColumn(
            "silhouette", format="%.3f", help="Cosine silhouette: -1 to 1; higher is better separated"
        ),
    },
)
downloads.table_buttons(runs_table(rows, "runs", RUNS_CAPTION), key="runs-table")
st.caption(
    "Accuracy and angles on the full test set; angles are between unit-normalised features and class mean "
    "directions. Grad-CAM interpretability (ROAD and five more metrics, each next to random maps, with 95% CIs): "
    "switch on *Score the maps* on the Grad-CAM page; once scored, ROAD shows here too."
)

viewable = [row for row in rows if "test accuracy" in row]
charts = [
    ("test accuracy", True),
    ("within-class angle (°)", False),
    ("min between-class angle (°)", False),
    ("cosine silhouette", False),
]
# with several seeds a run's bar would repeat its variant's label: the figures by variant above show them all
for column, (metric, percent) in layout.grid(charts if not seeded else [], per_row=layout.per_row(2)):
    values = {row["loss"]: row[metric] / 100 if percent else row[metric] for row in viewable}
    layout.chart(column, figures.metric_bars(values, metric, percent=percent), key=f"bars-{metric}")

st.subheader("Export")
downloads.report_button(records)
st.caption(
    "A run as a zip (config, metrics, safetensors weights and features), or its features for the TensorFlow "
    "Embedding Projector (load the folder at projector.tensorflow.org; leave *Sphereize data* off)."
)
for column, record in layout.grid(runs, per_row=5):
    with column:
        st.markdown(f"**{plain(run_label(record))}**")
        run_files = functools.partial(run_zip, session.run_store(), record.run_id)
        downloads.download(st, "Run (.zip)", run_files, f"{record.run_id}.zip", key=f"zip-{record.run_id}")
        downloads.download(
            st,
            "Projector (.zip)",
            functools.partial(loaders.projector_zip, record),
            f"{record.run_id}-projector.zip",
            key=f"proj-{record.run_id}",
            icon=":material/scatter_plot:",
        )
