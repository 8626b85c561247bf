"""Download buttons for a paper: a table as CSV and LaTeX, a chart as SVG, PDF and 300-dpi PNG in the
paper style, the experiment's report as a zip. Files are made only when their button is clicked (a static
export starts a browser), by the pure functions of :mod:`lab.reports`."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from lab.reports import html, paper
from lab.reports.tables import Table
from lab.runs.record import RunRecord

MIME = {
    "svg": "image/svg+xml",
    "pdf": "application/pdf",
    "png": "image/png",
    "csv": "text/csv",
    "tex": "text/x-tex",
    "zip": "application/zip",
}


def download(
    where: Any,
    label: str,
    data: Any,
    file_name: str,
    key: str | None = None,
    icon: str | None = ":material/download:",
    **extra: Any,
) -> None:
    """A download button for ``file_name`` (its type from its extension); ``data`` may be a function, called
    only when the button is clicked. Clicking does not rerun the page."""
    mime = MIME[file_name.rsplit(".", 1)[-1]]
    where.download_button(label, data, file_name, mime=mime, key=key, on_click="ignore", icon=icon, **extra)


def _format_buttons(make: Any, name: str, key: str) -> None:
    """SVG, PDF and 300-dpi PNG buttons, each file made by ``make(fmt)`` when clicked."""
    for fmt in paper.FORMATS:
        label = fmt.upper() + (f" ({paper.DPI} dpi)" if fmt == "png" else "")
        download(st, label, functools.partial(make, fmt), f"{name}.{fmt}", key=f"{key}-{fmt}", icon=None)


def table_buttons(table: Table, key: str) -> None:
    """CSV and LaTeX buttons for ``table``, side by side."""
    csv_column, latex_column, _ = st.columns([1, 1, 4])
    download(csv_column, "CSV", table.to_csv(), f"{table.name}.csv", key=f"{key}-csv")
    download(
        latex_column,
        "LaTeX",
        table.to_latex(),
        f"{table.name}.tex",
        key=f"{key}-tex",
        help="A tabular with booktabs rules (\\usepackage{booktabs})",
    )


def _figure_file(fig: go.Figure, fmt: str, width: str) -> bytes:
    with paper.exporter():
        return paper.to_bytes(paper.paper_style(fig, width), fmt)


def figure_buttons(where: Any, fig: go.Figure, name: str, key: str, width: str = "column") -> None:
    """A small "For a paper" menu under a chart with SVG, PDF and 300-dpi PNG in the paper style."""
    with where.popover("For a paper", icon=":material/download:"):
        st.caption(f"In the figure style: {paper.WIDTHS[width]:g} in wide, {paper.FONT_POINTS:g} pt black type.")
        _format_buttons(functools.partial(_figure_file, fig, width=width), name, key)


def file_buttons(files: dict[str, bytes], name: str, key: str) -> None:
    """A button per ready-made file (``{"svg": ..., "pdf": ...}``), side by side."""
    for column, (fmt, data) in zip(st.columns(len(files) + 3), files.items(), strict=False):
        download(column, fmt.upper(), data, f"{name}.{fmt}", key=f"{key}-{fmt}", icon=None)


def report_button(records: Sequence[RunRecord], key: str = "report-zip") -> None:
    """The experiment's report (HTML, figures, tables and methods) as a zip, made on click."""
    experiment = records[0].experiment or records[0].run_id
    download(
        st,
        "Report (.zip)",
        functools.partial(html.report_zip, list(records)),
        f"{html.safe_name(experiment) or 'report'}-report.zip",
        key=key,
        icon=":material/description:",
        help="A self-contained HTML report with the settings, the tables with their intervals and verdicts "
        "(also as CSV and LaTeX), the figures (also as SVG, PDF and PNG) and a methods paragraph, as "
        "`python -m lab report` writes it. Scoring the Grad-CAM maps takes a while on a CPU.",
    )


def _composed_file(
    records: list[RunRecord], images: Any, labels: Any, row_titles: list[str], method: str, layer: str, fmt: str
) -> bytes:
    from lab import datasets
    from lab.reports.composed import composed_figure, gradcam_columns, title_width
    from lab.runs.record import require_config
    from lab.runs.store import RunStore

    store = RunStore(records[0].run_dir.parent)
    columns = gradcam_columns(store, records, images, labels, method, layer, title_width(len(records)))
    class_names = datasets.info(require_config(records[0]).dataset).class_names
    fig = composed_figure(images, row_titles, columns, class_names, method)
    with paper.exporter():
        return paper.to_bytes(fig, fmt)


def composed_buttons(
    records: Sequence[RunRecord], images: Any, labels: Any, row_titles: Sequence[str], method: str, layer: str
) -> None:
    """SVG, PDF and 300-dpi PNG of these images' maps under every run with each run's feature space above,
    a column per loss titled with its test accuracy (:mod:`lab.reports.composed`)."""
    with st.popover("Feature space and maps for a paper", icon=":material/download:"):
        st.caption(
            f"One figure {paper.PAGE_INCHES:g} in wide: a column per loss titled with its test accuracy, its feature "
            "space on top and these images' maps below (overlay, each map on its own scale, whatever this page shows)."
        )
        make = functools.partial(_composed_file, list(records), images, labels, list(row_titles), method, layer)
        _format_buttons(make, f"features-and-{method.lower()}", "composed")
