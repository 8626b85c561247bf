"""Paper tables: CSV and LaTeX of the summary over seeds and the Grad-CAM metrics, escaped."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest

from lab.analysis.seed_stats import RunResult, summarize
from lab.reports.tables import Estimate, Table, csv_text, latex_escape, summary_table
from tests.lab.reports.test_html import HOSTILE


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


def test_latex_writes_greek_arrows_and_minus_signs_as_pdflatex_knows_them():
    assert (
        latex_escape("Center loss λ=0.01 · ROAD ↑")
        == "Center loss $\\lambda$=0.01 \\textperiodcentered{} ROAD $\\uparrow$"
    )
    latex = Table("t", ("variant", "ROAD"), (("a", Estimate(-0.5, -1.0, 0.25)),)).to_latex()
    assert "a & $-$0.500 [$-$1.000, 0.250] \\\\" in latex
