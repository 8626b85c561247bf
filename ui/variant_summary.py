"""The Compare page's view of an experiment's variants over their seeds: the summary of :mod:`lab.analysis.seed_stats`
(means, 95% confidence intervals, paired differences, the runs left out) drawn with the figures of
:mod:`lab.figures.variants`, and a figure against each hyperparameter a loss's variants sweep. Each run's
figures are read once per version of its files (``st.cache_data``)."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from lab.analysis.seed_stats import METRICS, SEED_METRICS, RunResult, VariantSummary, run_result, summarize, sweeps
from lab.figures.variants import summary_rows, sweep_figure, variant_figure
from lab.reports.tables import summary_table
from lab.runs.record import RunRecord
from lab.runs.store import RunStore
from lab.settings.experiment import loss_title, setting_symbol
from ui import downloads, layout, loaders
from ui.text import plain


@st.cache_data(show_spinner=False, max_entries=256)
def _run_result(_record: RunRecord, key: tuple[str, float]) -> RunResult:
    return run_result(RunStore(_record.run_dir.parent), _record)


def summaries(records: list[RunRecord]) -> list[VariantSummary]:
    """The experiment's variants over their seeds, in the order the variants were given."""
    return summarize([_run_result(record, loaders.cache_key(record)) for record in records])


def has_seeds(found: list[VariantSummary]) -> bool:
    """Whether some variant has more than one run: then runs are compared by variant, not one by one."""
    return any(summary.n + len(summary.left_out) > 1 for summary in found)


def by_variant(found: list[VariantSummary]) -> None:
    """A row per variant with each figure's mean and 95% CI and the paired difference to the first variant,
    then each figure with every seed as a dot."""
    interval = "with its 95% confidence interval over the finished seeds"
    rows = summary_rows(found)
    st.dataframe(
        rows,
        hide_index=True,
        column_order=[name for name in rows[0] if name != "notes"],  # under the table, whole: a cell cuts them
        column_config={
            "variant": st.column_config.TextColumn("variant"),  # as wide as its longest label: never cut
            "seeds": st.column_config.TextColumn("seeds", help="Finished seeds of the variant's runs"),
            **{
                metric.axis_title: st.column_config.TextColumn(metric.column, help=f"{metric.about} {interval}")
                for metric in SEED_METRICS.values()
            },
            "accuracy vs baseline": st.column_config.TextColumn(
                "vs baseline",
                help=f"Paired difference in test accuracy to {plain(found[0].variant)} over the seeds both finished "
                "(percentage points), with its 95% CI",
            ),
        },
    )
    for row in rows:
        if row["notes"]:
            st.caption(f"**{plain(row['variant'])}**: {plain(row['notes'])}")
    st.caption(
        "Mean over the finished seeds with its 95% confidence interval in brackets: Student's t, taken on the logit "
        "scale of the figure's range (accuracy 0 to 100%, angles 0 to 180°; a difference -100 to +100 points) and "
        "mapped back, so an interval never leaves the range and is lopsided near its ends. Runs that did not finish "
        "are named under the table and never averaged in. The paired difference subtracts the baseline seed by seed: "
        "the same seed gives both variants the same subset, initial weights and batch order."
    )
    downloads.table_buttons(summary_table(found), key="summary-table")
    for column, metric in layout.grid(METRICS, per_row=layout.per_row(3)):
        fig = variant_figure(found, metric)
        unscaled = go.Figure(fig)  # the chart is enlarged in place in presentation mode; the paper's is not
        layout.chart(column, fig, key=f"variant-{metric}")
        downloads.figure_buttons(column, unscaled, f"variants-{metric}", key=f"paper-variant-{metric}")


def against_swept_settings(found: list[VariantSummary]) -> None:
    """For each loss whose variants differ in one hyperparameter: every figure against that hyperparameter."""
    for sweep in sweeps(found):
        symbol = setting_symbol(sweep.loss, sweep.setting)
        st.subheader(f"{loss_title(sweep.loss)} against {symbol}")
        st.caption(
            f"Its {len(sweep.variants)} variants differ only in {sweep.setting} "
            f"({', '.join(f'{value:g}' if isinstance(value, float) else str(value) for value in sweep.values())})."
        )
        for column, metric in layout.grid(METRICS, per_row=layout.per_row(3)):
            fig = sweep_figure(sweep, metric)
            unscaled, key = go.Figure(fig), f"sweep-{sweep.loss}-{metric}"
            layout.chart(column, fig, key=key)
            name = f"sweep-{sweep.loss}-{sweep.setting}-{metric}"
            downloads.figure_buttons(column, unscaled, name, key=f"paper-{key}")
