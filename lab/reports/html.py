"""An experiment's report: one self-contained HTML file with its figures and tables as files beside it.

The report holds what a paper needs from an experiment and nothing read from anywhere but its run files:
the settings of every run, the versions of torch and LossLens that wrote the report, the summary over seeds
with its intervals and the paired differences, each loss's lesson checked against softmax, every run's
figures, the Grad-CAM metrics with their verdicts (when asked for), the figures (each also as SVG, PDF and
a 300-dpi PNG in the paper style) and a methods paragraph a paper can quote. Every text that comes from a
run file is escaped, and the figures are embedded as images (an SVG in an ``<img>`` runs no script), so
the file shows the same offline, anywhere.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import logging
import platform
import time
import zipfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

import losses
from lab.analysis import wording
from lab.analysis.geometry import summary as run_numbers
from lab.analysis.lessons import LessonCheck, check_lessons
from lab.analysis.seed_stats import METRICS, SEED_METRICS, VariantSummary, run_result, summarize, sweeps
from lab.figures.variants import sweep_figure, variant_figure
from lab.reports import paper
from lab.reports.cam_scores import CamScores, ProgressText, score_maps
from lab.reports.methods import methods
from lab.reports.tables import Estimate, Table, runs_table, summary_table
from lab.runs.contents import RunStoreError
from lab.runs.record import RunRecord, require_config
from lab.runs.store import RunStore
from lab.settings.experiment import variant_label

log = logging.getLogger(__name__)

DEFAULT_IMAGES = 100  # stored test images whose Grad-CAM maps are scored (the Grad-CAM page's default)
COMPOSED_IMAGES = 4
METHOD_SETTINGS = ("dataset", "model", "feat_dim", "epochs", "batch_size", "optimizer", "lr", "weight_decay")
METHOD_SETTINGS += ("train_limit",)  # the settings the methods paragraph states once for every run
PRIVATE_SETTINGS = ("data_root",)  # a local path says nothing about the method and may name a person's folder


@dataclasses.dataclass(frozen=True)
class Figure:
    """A figure of the report: its file stem, its caption and the files (svg, pdf, png)."""

    stem: str
    caption: str
    files: dict[str, bytes]


@dataclasses.dataclass(frozen=True)
class Report:
    """The report's HTML and every file that goes beside it, by path relative to the report's folder."""

    experiment: str
    html: str
    files: dict[str, bytes]

    def write(self, out: Path | str) -> list[Path]:
        """Write ``report.html`` and its files under ``out`` (created); the paths written."""
        root = Path(out)
        root.mkdir(parents=True, exist_ok=True)
        written = []
        for relative, data in {"report.html": self.html.encode(), **self.files}.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            written.append(path)
        return written

    def zip_bytes(self) -> bytes:
        """The report and its files as a zip, in a folder named after the experiment."""
        folder = safe_name(self.experiment) or "report"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{folder}/report.html", self.html)
            for relative, data in self.files.items():
                archive.writestr(f"{folder}/{relative}", data)
        return buffer.getvalue()


def safe_name(text: str) -> str:
    """``text`` reduced to a file name's safe characters (a run file's experiment name can hold anything)."""
    return "".join(char if char.isascii() and (char.isalnum() or char in "-_.") else "-" for char in text).strip(".-")


def versions() -> dict[str, str]:
    """The versions of what wrote the report."""
    import torch

    def installed(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed as a package"

    return {
        "LossLens": installed("losslens"),
        "torch": torch.__version__,
        "Python": platform.python_version(),
        "plotly": installed("plotly"),
        "grad-cam": installed("grad-cam"),
    }


# ---------------------------------------------------------------- what the report computes


def _experiment_records(store: RunStore, experiment: str, owner: str | None) -> list[RunRecord]:
    groups = store.experiments(owner=owner)
    if experiment not in groups:
        known = ", ".join(list(groups)[:5]) or "none"
        raise RunStoreError(f"experiment {experiment!r} not found in {store.root} (newest experiments: {known})")
    return list(groups[experiment])


def run_rows(store: RunStore, records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """A row per run, as Compare's table: variant, seed, status, test accuracy (the whole test set, from the
    run's status), training time, and the angles, silhouette and k-NN accuracy of its stored test features."""
    rows = []
    for record in records:
        config = record.config
        row: dict[str, Any] = {
            "variant": variant_label(config) if config else record.run_id,
            "seed": config.seed if config else None,
            "status": record.state,
        }
        accuracy = wording.test_accuracy(record)
        row["test accuracy (%)"] = wording.percent(accuracy) if accuracy is not None else None
        seconds = record.status.get("train_seconds") if isinstance(record.status, dict) else None
        row["training time (s)"] = round(float(seconds), 1) if isinstance(seconds, (int, float)) else None
        if record.state == "finished":
            try:
                features = store.load_features(record.run_id)
            except RunStoreError as err:
                row["status"] = f"unreadable: {err}"
                rows.append(row)
                continue
            directions = None if features.class_directions is None else features.class_directions.numpy()
            numbers = run_numbers(
                features.test_features.numpy(), features.test_labels.numpy(), features.test_logits.numpy(), directions
            )
            row |= {
                "within-class angle (°)": round(numbers["mean_within_class_angle"], 2),
                "min between-class angle (°)": round(numbers["min_between_class_angle"], 2),
                "cosine silhouette": round(numbers["cosine_silhouette"], 3),
                "k-NN accuracy (%)": wording.percent(numbers["knn_accuracy"]),
            }
        rows.append(row)
    return rows


RUNS_CAPTION = (
    "One row per run. Test accuracy: the whole test set, measured when the run ended. Training time: seconds in "
    "the run's own training steps. Angles between unit-length test features and class mean directions; cosine "
    "silhouette from -1 to 1; k-NN accuracy: leave-one-out 5 nearest neighbours by cosine similarity."
)


# ---------------------------------------------------------------- figures


def _figure_files(fig: go.Figure, width: str = "column") -> dict[str, bytes]:
    return paper.paper_files(fig, width)


def summary_figures(summaries: Sequence[VariantSummary], progress: ProgressText | None = None) -> list[Figure]:
    """Each figure over seeds by variant, and each against a swept hyperparameter, in the paper style."""
    drawn = [s for s in summaries if s.n > 0]
    figures = []
    for metric in METRICS:
        if progress:
            progress(f"drawing {SEED_METRICS[metric].title}")
        caption = (
            f"{SEED_METRICS[metric].axis_title} by variant: each finished seed as a dot, the mean with its 95% "
            "confidence interval (Student's t on the logit scale of the figure's range)."
        )
        figures.append(Figure(f"variants-{metric}", caption, _figure_files(variant_figure(drawn, metric))))
    for sweep in sweeps(drawn):
        for metric in METRICS:
            caption = (
                f"{SEED_METRICS[metric].axis_title} against {sweep.setting} of {sweep.loss}: seeds, means, 95% CIs."
            )
            files = _figure_files(sweep_figure(sweep, metric))
            figures.append(Figure(f"sweep-{safe_name(sweep.loss)}-{sweep.setting}-{metric}", caption, files))
    return figures


def composed(store: RunStore, records: Sequence[RunRecord], method: str = "GradCAM") -> Figure:
    """The feature spaces and Grad-CAM maps of one seed side by side, a page wide."""
    from lab.reports.composed import experiment_figure, one_seed

    seed = require_config(one_seed(records)[0]).seed
    fig = experiment_figure(store, records, COMPOSED_IMAGES, method)
    caption = (
        f"Feature space and {method} maps of the training seed {seed}, a column per loss titled with its test "
        "accuracy. Top: the test features (2-D on the unit circle, 3-D as a longitude-latitude map of their "
        "directions, wider as the first two principal components of the unit-length features), colored by class. "
        f"Below: the same {COMPOSED_IMAGES} stored test images (row label: the true class) with each model's map of "
        "its predicted class, each map on its own 0-to-1 scale; a red frame marks a wrong prediction."
    )
    with paper.exporter():
        files = {fmt: paper.to_bytes(fig, fmt) for fmt in paper.FORMATS}
    return Figure("features-and-gradcam", caption, files)


# ---------------------------------------------------------------- the methods paragraph


# ---------------------------------------------------------------- HTML

CSS = """
body { font-family: Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2rem auto; padding: 0 1rem;
       color: #111; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.85rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { border-bottom: 2px solid #111; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
figure { margin: 1.2rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption, .caption { font-size: 0.85rem; color: #222; }
.files a { margin-right: 0.8rem; font-size: 0.85rem; }
pre { background: #f6f6f6; padding: 0.6rem; font-size: 0.8rem; overflow-x: auto; }
.methods { background: #f8f8f4; padding: 0.8rem 1rem; border-left: 3px solid #888; }
"""


def esc(text: Any) -> str:
    """Any value as HTML text (run files are untrusted)."""
    return html.escape("" if text is None else str(text), quote=True)


def _cell(value: Any) -> str:
    if isinstance(value, Estimate):
        mark = f" <sup>{esc(value.mark)}</sup>" if value.mark and value.value is not None else ""
        return f'<td class="num">{esc(value.text())}{mark}</td>'
    if isinstance(value, float):
        return f'<td class="num">{esc(f"{value:.4g}")}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    return f"<td>{esc('' if value is None else value)}</td>"


def table_html(table: Table) -> str:
    """``table`` as an HTML table with its caption and links to its CSV and LaTeX files."""
    head = "".join(f"<th>{esc(column)}</th>" for column in table.columns)
    body = "".join("<tr>" + "".join(_cell(cell) for cell in row) + "</tr>" for row in table.rows)
    name = safe_name(table.name)
    links = (
        f'<p class="files"><a href="tables/{name}.csv">{esc(name)}.csv</a>'
        f'<a href="tables/{name}.tex">{esc(name)}.tex</a></p>'
    )
    caption = f'<p class="caption">{esc(table.caption)}</p>' if table.caption else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{caption}{links}"


def table_files(table: Table) -> dict[str, bytes]:
    name = safe_name(table.name)
    return {f"tables/{name}.csv": table.to_csv().encode(), f"tables/{name}.tex": table.to_latex().encode()}


def figure_html(figure: Figure) -> str:
    """The figure's SVG embedded as an image (no script runs in it), its caption and links to its files."""
    svg = base64.b64encode(figure.files["svg"]).decode()
    stem = safe_name(figure.stem)
    links = "".join(f'<a href="figures/{stem}.{fmt}">{stem}.{fmt}</a>' for fmt in figure.files)
    return (
        f'<figure><img alt="{esc(figure.caption)}" src="data:image/svg+xml;base64,{svg}">'
        f'<figcaption>{esc(figure.caption)}</figcaption><p class="files">{links}</p></figure>'
    )


def _settings_section(records: Sequence[RunRecord]) -> str:
    """The settings every run shares once, then a row per run with what sets it apart, and each run's
    whole configuration."""
    configs = {record.run_id: record.config.to_dict() for record in records if record.config is not None}
    for config in configs.values():
        for name in PRIVATE_SETTINGS:
            config.pop(name, None)
    if not configs:
        return "<p>No run has a readable configuration.</p>"
    keys = list(dict.fromkeys(key for config in configs.values() for key in config))
    shared = [key for key in keys if len({json.dumps(c.get(key), sort_keys=True) for c in configs.values()}) == 1]
    first = next(iter(configs.values()))
    shared_rows = "".join(
        f"<tr><td>{esc(key)}</td><td>{esc(json.dumps(first.get(key), sort_keys=True))}</td></tr>" for key in shared
    )
    own = [key for key in keys if key not in shared]
    head = "<th>run</th><th>status</th>" + "".join(f"<th>{esc(key)}</th>" for key in own)
    states = {record.run_id: record.state for record in records}
    rows = "".join(
        f"<tr><td>{esc(run_id)}</td><td>{esc(states.get(run_id))}</td>"
        + "".join(f"<td>{esc(json.dumps(config.get(key), sort_keys=True))}</td>" for key in own)
        + "</tr>"
        for run_id, config in configs.items()
    )
    details = "".join(
        f"<details><summary>{esc(run_id)}</summary><pre>{esc(json.dumps(config, indent=1, sort_keys=True))}</pre>"
        "</details>"
        for run_id, config in configs.items()
    )
    unreadable = [record for record in records if record.config is None]
    missing = (
        "<p>Runs without a readable configuration: " + esc(", ".join(r.run_id for r in unreadable)) + "</p>"
        if unreadable
        else ""
    )
    return (
        "<h3>Shared by every run</h3><table><tbody>" + shared_rows + "</tbody></table>"
        "<h3>Each run</h3><table><thead><tr>"
        + head
        + "</tr></thead><tbody>"
        + rows
        + "</tbody></table>"
        + missing
        + '<p class="caption">The data folder of each run is left out (a local path). Each run\'s whole '
        "configuration:</p>" + details
    )


def _lessons_html(checks: Sequence[LessonCheck]) -> str:
    if not checks:
        return (
            "<p>No lesson to check: the experiment has no softmax variant, or no loss beside it promises a change.</p>"
        )
    rows = "".join(
        f"<tr><td>{esc(check.variant)}</td><td>{esc(check.verdict)}</td><td>{esc(check.sentence())}</td></tr>"
        for check in checks
    )
    head = "<tr><th>variant</th><th>verdict</th><th>the check</th></tr>"
    return f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>"


def build_report(
    store: RunStore,
    experiment: str,
    *,
    images: int = DEFAULT_IMAGES,
    method: str = "GradCAM",
    owner: str | None = None,
    records: Sequence[RunRecord] | None = None,
    progress: ProgressText | None = None,
) -> Report:
    """The report of ``experiment`` in ``store`` (as ``owner`` sees it, in the app; ``records``: its runs as
    a page already listed them); ``images`` stored test images per run have their Grad-CAM maps scored (0:
    no Grad-CAM metrics)."""
    records = list(records) if records is not None else _experiment_records(store, experiment, owner)
    summaries = summarize([run_result(store, record) for record in records])
    checks = check_lessons(summaries)
    files: dict[str, bytes] = {}
    tables = {"summary": summary_table(summaries), "runs": runs_table(run_rows(store, records), "runs", RUNS_CAPTION)}
    cams = score_maps(store, records, images, method, progress) if images > 0 else None
    for table in [*tables.values(), *(cams.tables if cams else [])]:
        files |= table_files(table)
    figures: list[Figure] = []
    with paper.exporter():
        if any(s.n > 0 for s in summaries):
            figures += summary_figures(summaries, progress)
        finished = [r for r in records if r.state == "finished" and r.config is not None]
        composed_error = ""
        if finished:
            if progress:
                progress("drawing the feature spaces and Grad-CAM maps")
            try:
                figures.insert(0, composed(store, records, method))
            except (ValueError, RuntimeError) as err:
                composed_error = str(err)
    for figure in figures:
        for fmt, data in figure.files.items():
            files[f"figures/{safe_name(figure.stem)}.{fmt}"] = data
    page = _page(experiment, records, summaries, checks, tables, cams, figures, composed_error if finished else "")
    return Report(experiment, page, files)


def _page(
    experiment: str,
    records: Sequence[RunRecord],
    summaries: Sequence[VariantSummary],
    checks: Sequence[LessonCheck],
    tables: dict[str, Table],
    cams: CamScores | None,
    figures: Sequence[Figure],
    composed_error: str,
) -> str:
    finished = sum(record.state == "finished" for record in records)
    written = time.strftime("%Y-%m-%d %H:%M %Z")
    version_rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in versions().items())
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; style-src '
        "'unsafe-inline'\">",
        f"<title>LossLens report: {esc(experiment)}</title><style>{CSS}</style></head><body>",
        f"<h1>LossLens report: {esc(experiment)}</h1>",
        f"<p>{len(records)} runs ({finished} finished) of {len(summaries)} variants; written {esc(written)}.</p>",
        "<h2>Methods</h2>",
        f'<p class="methods">{esc(methods(records, summaries, cams))}</p>',
        "<h2>Summary over seeds</h2>",
        table_html(tables["summary"]),
    ]
    notes = [(s.variant, note) for s in summaries for note in s.notes()]
    if notes:
        parts.append("<ul>" + "".join(f"<li><b>{esc(v)}</b>: {esc(n)}</li>" for v, n in notes) + "</ul>")
    parts += ["<h2>Lessons checked against softmax</h2>", _lessons_html(checks)]
    parts += ["<h2>Figures</h2>"]
    if composed_error:
        parts.append(f"<p>The feature-space and Grad-CAM figure could not be drawn: {esc(composed_error)}</p>")
    parts += [figure_html(figure) for figure in figures]
    if not figures:
        parts.append("<p>No finished run: nothing to draw.</p>")
    parts += ["<h2>Every run</h2>", table_html(tables["runs"])]
    if cams is not None:
        parts.append(f"<h2>How interpretable are the {esc(cams.method)} maps?</h2>")
        parts += [table_html(table) for table in cams.tables]
        if cams.failures:
            parts.append("<p>Not scored: " + esc("; ".join(cams.failures)) + "</p>")
    parts += [
        "<h2>Settings of every run</h2>",
        _settings_section(records),
        "<h2>Versions</h2>",
        "<table><tbody>" + version_rows + "</tbody></table>",
        '<p class="caption">The versions of the software that wrote this report. The run files do not record the '
        "versions they were trained with; runs trained elsewhere may have used others.</p>",
        f'<p class="caption">Losses known to this LossLens: {esc(", ".join(losses.names()))}.</p>',
        "</body></html>",
    ]
    return "\n".join(parts)


def report_zip(records: Sequence[RunRecord], images: int = DEFAULT_IMAGES) -> bytes:
    """The report of the experiment whose runs are ``records`` as a zip (the Compare page's download)."""
    if not records:
        raise ValueError("no runs: nothing to report")
    store = RunStore(records[0].run_dir.parent)
    experiment = records[0].experiment or records[0].run_id
    return build_report(store, experiment, images=images, records=records).zip_bytes()
