"""Outputs for a paper: tables as CSV and LaTeX with intervals, charts as SVG/PDF/PNG in the figure style,
``python -m lab report`` and the presets' flags (real MNIST from a local folder)."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image

from lab.analysis.seed_stats import METRICS, RunResult, summarize
from lab.cli.main import main
from lab.reports import html, paper
from lab.reports.composed import Column, composed_figure
from lab.reports.tables import Estimate, Table, csv_text, latex_escape, summary_table
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.settings.experiment import make_experiment
from lab.training.loop import train_experiment
from tests.apptest import app_reads, open_page
from tests.browser import requires_chromium
from tests.conftest import run_cli, write_idx_dataset

HOSTILE = "<img src=x onerror=alert(1)> 50% & $x_1$ #{~^} \\end{tabular} =cmd|' /C calc'!A0"


def results(labels: list[str], seeds: tuple[int, ...] = (0, 1, 2)) -> list[RunResult]:
    rng = np.random.default_rng(0)
    found = []
    for i, label in enumerate(labels):
        for seed in seeds:
            figures = {
                "test_acc": 0.9 + 0.01 * i + 0.005 * rng.random(),
                "mean_within_class_angle": 20.0 + rng.random(),
                "min_between_class_angle": 30.0 + rng.random(),
                "share_beyond_margin": 0.5 + 0.1 * rng.random(),
                "class_spread": 0.6 + 0.1 * rng.random(),
            }
            found.append(RunResult(f"run-{i}-{seed}", label, "softmax", {}, seed, "finished", "", figures))
    return found


# --- tables ---------------------------------------------------------------------------------------------


def test_the_latex_summary_has_a_row_per_variant_with_mean_and_interval_and_escapes_every_label():
    summaries = summarize(results(["Softmax", HOSTILE, "AMC m=0.5"]))
    latex = summary_table(summaries).to_latex()
    body = latex.split("\\midrule\n")[1].split("\\bottomrule")[0].strip().splitlines()
    assert len(body) == 3, "one row per variant"
    for line, summary in zip(body, summaries, strict=True):
        cells = line.removesuffix(" \\\\").split(" & ")
        assert len(cells) == 8, cells  # variant, seeds, five figures, the difference to the baseline
        accuracy = summary.stats["test_acc"]
        expected = f"{100 * accuracy.mean:.1f} [{100 * accuracy.ci_low:.1f}, {100 * accuracy.ci_high:.1f}]"
        assert cells[2] == expected
        assert all(re.fullmatch(r"[-+]?\d+\.\d+ \[[-+]?\d+\.\d+, [-+]?\d+\.\d+\]", cell) for cell in cells[2:7])
    hostile = body[1].split(" & ")[0]
    assert hostile == latex_escape(HOSTILE)
    for raw in ("\\end{tabular}", "$x_1$", "50%", "#{", "& $"):
        assert raw not in hostile
    assert "\\textbackslash{}end\\{tabular\\}" in hostile and "50\\%" in hostile and "\\$x\\_1\\$" in hostile
    assert body[2].split(" & ")[-1].startswith("+"), "a difference is written with its sign"
    assert latex.count("\\begin{tabular}") == 1 and latex.count("\\end{tabular}") == 1


def test_the_csv_gives_value_low_and_high_as_numbers_and_quotes_a_formula_as_text():
    summaries = summarize(results(["Softmax", HOSTILE]))
    rows = list(csv.reader(io.StringIO(summary_table(summaries).to_csv())))
    header, softmax, hostile = rows
    assert header[:5] == ["variant", "seeds", "accuracy (%)", "accuracy (%) low", "accuracy (%) high"]
    accuracy = summaries[0].stats["test_acc"]
    assert [float(v) for v in softmax[2:5]] == pytest.approx(
        [100 * accuracy.mean, 100 * accuracy.ci_low, 100 * accuracy.ci_high]
    )
    assert hostile[0] == HOSTILE  # a label starting with "<" is not a formula: kept as written
    assert csv_text("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert csv_text("-2+3") == "'-2+3" and csv_text("@SUM(A1)") == "'@SUM(A1)" and csv_text("AMC") == "AMC"


def test_an_estimate_without_an_interval_is_its_value_and_a_mark_goes_to_its_own_csv_column():
    table = Table(
        "t",
        ("variant", "ROAD"),
        (("a", Estimate(0.1234, 0.1, 0.15, mark="better")), ("=b", Estimate(0.2, None, None)), ("c", None)),
    )
    rows = list(csv.reader(io.StringIO(table.to_csv())))
    assert rows[0] == ["variant", "ROAD", "ROAD low", "ROAD high", "ROAD verdict"]
    assert rows[1] == ["a", "0.1234", "0.1", "0.15", "better"] and rows[2] == ["'=b", "0.2", "", "", ""]
    latex = table.to_latex()
    assert "0.123 [0.100, 0.150]\\textsuperscript{better}" in latex and "0.200 \\\\" in latex


# --- the figure style and static export -------------------------------------------------------------------


def small_figure() -> go.Figure:
    fig = go.Figure(go.Scatter(x=[0, 1, 2], y=[2, 0, 1], name="seeds"))
    fig.update_layout(title="test accuracy", height=380, font=dict(size=12, color="#777777"), updatemenus=[{}])
    fig.frames = [go.Frame(data=[go.Scatter(x=[0], y=[0])])]
    return fig


def test_the_paper_style_draws_a_column_wide_figure_in_black_8_point_type_without_animation():
    styled = paper.paper_style(small_figure())
    assert styled.layout.width == round(paper.COLUMN_INCHES * paper.CSS_DPI)
    assert styled.layout.font.size == pytest.approx(paper.FONT_POINTS * 96 / 72)
    assert styled.layout.font.color == paper.INK and styled.layout.xaxis.linecolor == paper.INK
    assert styled.layout.xaxis.tickfont.color == paper.INK and styled.layout.xaxis.showline
    assert not styled.frames and not styled.layout.updatemenus
    wide = paper.paper_style(small_figure(), "page")
    assert wide.layout.width == round(paper.PAGE_INCHES * paper.CSS_DPI)
    with pytest.raises(ValueError, match="column, page"):
        paper.paper_style(small_figure(), "poster")


@requires_chromium
def test_a_chart_exports_as_svg_pdf_and_a_300_dpi_png_at_its_printed_size(tmp_path):
    written = paper.write_figure(paper.paper_style(small_figure()), tmp_path / "accuracy")
    files = {path.suffix: path.read_bytes() for path in written}
    assert set(files) == {".svg", ".pdf", ".png"}
    assert files[".svg"].lstrip().startswith(b"<svg") and b"test accuracy" in files[".svg"]
    assert files[".pdf"].startswith(paper.PDF_MAGIC) and len(files[".pdf"]) > 2000
    width_points = float(re.search(rb"/MediaBox \[0 0 ([\d.]+) ", files[".pdf"]).group(1))
    assert width_points == pytest.approx(paper.COLUMN_INCHES * 72, abs=1)
    assert files[".png"].startswith(paper.PNG_MAGIC)
    with Image.open(io.BytesIO(files[".png"])) as image:
        assert image.width == round(paper.COLUMN_INCHES * paper.DPI)
        assert image.info["dpi"][0] == pytest.approx(paper.DPI, abs=0.01)


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


def test_preset_trains_on_a_local_mnist_with_the_seeds_and_schedule_asked_for(tmp_path):
    data = tmp_path / "mnist"
    write_idx_dataset(data / "MNIST" / "raw", n_train=60, n_test=20)
    argv = ["preset", "amc-gradcam", "--dataset", "mnist", "--data-root", str(data), "--seeds", "3,4"]
    argv += ["--epochs", "1", "--train-limit", "40", "--runs-dir", str(tmp_path / "runs"), "--device", "cpu"]
    result = run_cli(*argv)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 4 and {line["dataset"] for line in lines} == {"mnist"}
    assert sorted(line["seed"] for line in lines) == [3, 3, 4, 4] and {line["epochs"] for line in lines} == {1}
    assert {line["status"] for line in lines} == {"finished"}
    assert "4 runs on mnist" in result.stderr


def test_preset_names_its_datasets_for_another_and_says_when_bare_idx_files_could_be_either(tmp_path, capsys):
    assert main(["preset", "amc-gradcam", "--dataset", "cifar10", "--runs-dir", str(tmp_path)]) == 2
    assert "trains on mnist, fashion-mnist, not 'cifar10'" in capsys.readouterr().err
    write_idx_dataset(tmp_path / "bare")
    line = json.loads(
        next(
            line
            for line in _preset_list(tmp_path / "bare", capsys).splitlines()
            if json.loads(line)["name"] == "amc-gradcam"
        )
    )
    assert line["dataset"] == "mnist" and "--dataset fashion-mnist" in line["dataset_note"]


def _preset_list(data_root: Path, capsys) -> str:
    assert main(["preset", "--list", "--data-root", str(data_root)]) == 0
    return capsys.readouterr().out


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


def test_latex_writes_greek_arrows_and_minus_signs_as_pdflatex_knows_them():
    assert (
        latex_escape("Center loss λ=0.01 · ROAD ↑")
        == "Center loss $\\lambda$=0.01 \\textperiodcentered{} ROAD $\\uparrow$"
    )
    latex = Table("t", ("variant", "ROAD"), (("a", Estimate(-0.5, -1.0, 0.25)),)).to_latex()
    assert "a & $-$0.500 [$-$1.000, 0.250] \\\\" in latex


def test_the_composed_figure_has_a_column_per_loss_a_row_per_image_a_color_bar_and_literal_labels():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(3, 1, 8, 8), dtype=np.uint8)
    cell = np.zeros((8, 8, 3), dtype=np.uint8)
    columns = [
        Column(
            f"{name}<br>90.0% test acc.<br>seed 0",
            rng.normal(size=(20, 2)),
            np.arange(20) % 2,
            ("", ""),
            [cell] * 3,
            [False] * 3,
            2,
        )
        for name in ("Softmax", "AMC")
    ]
    fig = composed_figure(images, ["#1 · <b>zero</b>", "#2", "#3"], columns, ["zero", "one"])
    titles = [annotation.text for annotation in fig.layout.annotations]
    assert titles == ["test image", columns[0].title, columns[1].title]
    assert sum(trace.type == "image" for trace in fig.data) == 3 * (1 + len(columns))
    assert [trace.marker.showscale for trace in fig.data if trace.type == "scatter" and trace.marker.showscale]
    assert fig.layout.yaxis4.title.text == "#1 · &lt;b&gt;zero&lt;/b&gt;"  # the first image row's label, as text
    assert fig.layout.width == round(paper.PAGE_INCHES * paper.CSS_DPI)
