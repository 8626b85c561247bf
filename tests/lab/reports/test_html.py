"""Outputs for a paper: tables as CSV and LaTeX with intervals, charts as SVG/PDF/PNG in the figure style,
``python -m lab report`` and the presets' flags (real MNIST from a local folder)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest

from lab.analysis.seed_stats import METRICS
from lab.cli.main import main
from lab.reports import html, paper
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.settings.experiment import make_experiment
from lab.training.loop import train_experiment
from tests.apptest import app_reads, open_page
from tests.browser import requires_chromium

HOSTILE = "<img src=x onerror=alert(1)> 50% & $x_1$ #{~^} \\end{tabular} =cmd|' /C calc'!A0"


# --- tables ---------------------------------------------------------------------------------------------


# --- the figure style and static export -------------------------------------------------------------------


# --- python -m lab report -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny experiment: softmax and AMC on the bundled digits, 2 seeds, 1 epoch; one run's label tampered."""
    runs = tmp_path_factory.mktemp("runs")
    template = RunConfig(dataset="digits", feat_dim=2, epochs=1, train_limit=200, device="cpu", experiment="paper")
    configs = make_experiment(template, ["softmax", "amc"], seeds=[0, 1])
    assert [r.state for r in train_experiment(configs, RunStore(runs))] == ["finished"] * 4
    amc = next(path for path in runs.iterdir() if path.name.endswith("amc-1"))
    config = json.loads((amc / "config.json").read_text())
    config["variant"] = HOSTILE  # anyone who can write the runs folder can write this
    (amc / "config.json").write_text(json.dumps(config))
    return runs


@requires_chromium
def test_report_writes_html_figures_and_tables_with_methods_and_escapes_run_files(trained, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", "paper", "--runs-dir", str(trained), "--out", str(out), "--images", "4"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    page = (out / "report.html").read_text()
    assert line["report"] == str(out / "report.html")
    # every figure is embedded, and written beside the page as SVG, PDF and PNG
    stems = {Path(p).stem for p in line["figures"]}
    assert "features-and-gradcam" in stems and "variants-test_acc" in stems
    for stem in stems:
        assert (out / "figures" / f"{stem}.pdf").read_bytes().startswith(paper.PDF_MAGIC)
        assert (out / "figures" / f"{stem}.png").read_bytes().startswith(paper.PNG_MAGIC)
        assert (out / "figures" / f"{stem}.svg").read_bytes().lstrip().startswith(b"<svg")
    assert page.count('<img alt="') == len(stems) and page.count("data:image/svg+xml;base64,") == len(stems)
    # the tables, with intervals, as CSV and LaTeX; the Grad-CAM metrics over the two seeds
    for name in ("summary", "runs", "gradcam-metrics-seeds", "gradcam-vs-softmax-seeds"):
        assert (out / "tables" / f"{name}.csv").is_file() and (out / "tables" / f"{name}.tex").is_file()
    summary_tex = (out / "tables" / "summary.tex").read_text()
    assert re.search(r"\d+\.\d \[\d+\.\d, \d+\.\d\]", summary_tex)
    # methods, settings and versions
    assert "logit scale" in page and "Holm" in page and "paired" in page and "seed (0, 1)" in page
    assert "8x8 digits" in page or "digits" in page.lower()
    import torch

    assert torch.__version__ in page and "LossLens" in page
    assert page.count("<details>") == 4, "every run's whole configuration"
    # a label from a run file is text, never markup
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "Content-Security-Policy" in page


def test_report_of_an_unknown_experiment_is_one_error_line(trained, tmp_path, capsys):
    assert main(["report", "nothing-here", "--runs-dir", str(trained), "--out", str(tmp_path / "r")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: experiment 'nothing-here' not found") and "paper" in error
    assert main(["report", "paper", "--runs-dir", str(trained), "--out", str(tmp_path / "r"), "--images", "1"]) == 2
    assert "--images must be 0 or at least 2" in capsys.readouterr().err


# --- presets on real MNIST ----------------------------------------------------------------------------------


def test_compare_offers_its_tables_as_csv_and_latex_each_chart_for_a_paper_and_the_report(trained):
    with app_reads(trained):
        app = open_page("pages/compare.py", experiment="paper")
    labels = [button.proto.label for button in app.get("download_button")]
    assert labels.count("CSV") == 2 and labels.count("LaTeX") == 2, labels  # the summary over seeds and the runs
    assert "Report (.zip)" in labels
    per_chart = [label for label in labels if label.startswith(("SVG", "PDF", "PNG"))]
    assert len(per_chart) == 3 * len(METRICS) and "PNG (300 dpi)" in per_chart


@requires_chromium
def test_the_report_zip_of_the_compare_page_holds_the_page_its_figures_and_tables(trained):
    records = RunStore(trained).experiments()["paper"]
    with zipfile.ZipFile(io.BytesIO(html.report_zip(records, images=0))) as archive:
        names = set(archive.namelist())
        page = archive.read("paper/report.html").decode()
    assert {"paper/report.html", "paper/tables/summary.tex", "paper/figures/features-and-gradcam.pdf"} <= names
    assert "How interpretable" not in page, "no Grad-CAM metrics asked for"
    assert "&lt;img src=x" in page and "<img src=x" not in page
