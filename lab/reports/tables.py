"""Tables for a paper: every table the app shows (the summary over seeds, Compare's runs, the Grad-CAM
metrics) as CSV and as a LaTeX ``tabular``, each figure with its 95% interval.

A :class:`Table` holds text cells and :class:`Estimate` cells (a mean with its interval, written
``96.1 [95.3, 96.9]``). The CSV gives an estimate three columns (the value, ``low`` and ``high``) at full
precision, so a spreadsheet can use the numbers; LaTeX writes it in one cell with the app's rounding. Labels
come from run files, which anyone can write, so every text is escaped: in LaTeX each special character is
written as itself, in CSV a cell that a spreadsheet would take for a formula is quoted as text.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import re
import textwrap
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lab.analysis.seed_stats import SEED_METRICS, VariantSummary
from lab.interpret import statistics as stats
from lab.interpret import verdicts
from lab.interpret.statistics import METRICS as CAM_METRICS
from lab.interpret.statistics import MetricResult, SeedResult

CamResult = MetricResult | SeedResult
MISSING = "–"


def _number(digits: int) -> Callable[[float], str]:
    return lambda value: f"{value:.{digits}f}"


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A value with its interval (``low``/``high`` None: no interval, as for one seed), in the unit its
    column names; ``write`` rounds a number as the app does, ``mark`` is a short verdict (``better``)."""

    value: float | None
    low: float | None = None
    high: float | None = None
    write: Callable[[float], str] = _number(3)
    mark: str = ""

    def text(self) -> str:
        """``96.1 [95.3, 96.9]``, ``96.1`` without an interval, ``–`` without a value."""
        if self.value is None or not math.isfinite(self.value):
            return MISSING
        out = self.write(self.value)
        if self.low is not None and self.high is not None:
            out += f" [{self.write(self.low)}, {self.write(self.high)}]"
        return out


Cell = str | int | float | Estimate | None


@dataclasses.dataclass(frozen=True)
class Table:
    """``rows`` of cells under ``columns``; ``caption`` says what the numbers are and how the intervals
    were computed, ``name`` is the file name a download gets (``summary`` gives summary.csv)."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    caption: str = ""

    def __post_init__(self) -> None:
        wrong = [row for row in self.rows if len(row) != len(self.columns)]
        if wrong:
            raise ValueError(f"table {self.name}: a row has {len(wrong[0])} cells for {len(self.columns)} columns")

    def to_csv(self) -> str:
        """One header line and a line per row; an :class:`Estimate` column becomes three (``X``, ``X low``,
        ``X high``), a mark a fourth (``X verdict``) where some cell has one."""
        estimates = [any(isinstance(row[i], Estimate) for row in self.rows) for i in range(len(self.columns))]
        marked = [
            any(isinstance(row[i], Estimate) and row[i].mark for row in self.rows) for i in range(len(self.columns))
        ]
        header: list[str] = []
        for column, estimate, mark in zip(self.columns, estimates, marked, strict=True):
            header += [column, f"{column} low", f"{column} high"] if estimate else [column]
            header += [f"{column} verdict"] if mark else []
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([csv_text(text) for text in header])
        for row in self.rows:
            line: list[Any] = []
            for cell, estimate, mark in zip(row, estimates, marked, strict=True):
                if isinstance(cell, Estimate):
                    line += [_csv_number(cell.value), _csv_number(cell.low), _csv_number(cell.high)]
                    line += [csv_text(cell.mark)] if mark else []
                elif estimate:
                    line += [csv_text(_plain(cell)), "", ""] + ([""] if mark else [])
                else:
                    line.append(_csv_number(cell) if isinstance(cell, (int, float)) else csv_text(_plain(cell)))
            writer.writerow(line)
        return out.getvalue()

    def to_latex(self) -> str:
        """A ``tabular`` (booktabs rules) with the caption as a comment above it: paste it into a ``table``
        environment with ``\\usepackage{booktabs}``."""
        align = "".join("l" if i == 0 or not _numeric(self, i) else "r" for i in range(len(self.columns)))
        lines = [f"% {line}" for line in _wrap(latex_comment(self.caption))] if self.caption else []
        lines += [
            f"\\begin{{tabular}}{{{align}}}",
            "\\toprule",
            " & ".join(latex_escape(column) for column in self.columns) + " \\\\",
            "\\midrule",
        ]
        for row in self.rows:
            lines.append(" & ".join(_latex_cell(cell) for cell in row) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}", ""]
        return "\n".join(lines)


def _numeric(table: Table, i: int) -> bool:
    return all(isinstance(row[i], (Estimate, int, float)) or row[i] is None for row in table.rows)


def _plain(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, Estimate):
        return cell.text()
    return str(cell)


def _csv_number(value: float | int | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.10g}" if isinstance(value, float) else str(value)  # 79.405, not 79.40499999999999


def _latex_cell(cell: Cell) -> str:
    if isinstance(cell, Estimate):
        text = latex_escape(cell.text()).replace("-", "$-$")  # a minus sign, not a hyphen
        return text + (
            f"\\textsuperscript{{{latex_escape(cell.mark)}}}" if cell.mark and cell.value is not None else ""
        )
    if isinstance(cell, float):
        return latex_escape(f"{cell:.4g}").replace("-", "$-$")
    return latex_escape(_plain(cell))


# ---------------------------------------------------------------- escaping

_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "°": r"\textdegree{}",
    "–": "--",
    "−": "--",
    "±": r"\textpm{}",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "·": r"\textperiodcentered{}",
    "×": r"$\times$",
    "…": r"\ldots{}",
}
# Greek letters name hyperparameters (center loss's λ, AMC's α); pdflatex knows them only in math mode
_GREEK = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau upsilon phi chi psi"
_GREEK += " omega"
for _name in _GREEK.split():
    _unicode = "lamda" if _name == "lambda" else _name
    _LATEX[unicodedata.lookup(f"GREEK SMALL LETTER {_unicode.upper()}")] = f"$\\{_name}$"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]")


def latex_escape(text: str) -> str:
    """``text`` as LaTeX prints it literally: every special character escaped, line breaks and control
    characters as spaces (a run file's label can hold anything)."""
    text = _CONTROL.sub(" ", str(text)).replace("\n", " ").replace("\t", " ").replace("\r", " ")
    return "".join(_LATEX.get(char, char) for char in text)


def latex_comment(text: str) -> str:
    """``text`` safe on a ``%`` comment line: one line, no control characters (nothing in a comment is read)."""
    return _CONTROL.sub(" ", str(text)).replace("\n", " ").replace("\r", " ")


def _wrap(text: str, width: int = 100) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)


def csv_text(text: str) -> str:
    """``text`` for a CSV cell: one a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, a tab or
    a carriage return first) gets a leading apostrophe, so it shows as text."""
    text = str(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# ---------------------------------------------------------------- the app's tables

SUMMARY_CAPTION = (
    "Mean over the finished training seeds with its 95% confidence interval in brackets: Student's t, taken on the "
    "logit scale of the figure's range (accuracy 0 to 100%, angles 0 to 180 degrees; a difference -100 to +100 "
    "points) and mapped back. The difference to the baseline is paired seed by seed. Runs that did not finish are "
    "not averaged in."
)


def _seed_estimate(metric: str, stats_: Any, signed: bool = False) -> Estimate:
    declared = SEED_METRICS[metric]
    scale = 100.0 if declared.percent else 1.0
    sign = "+" if signed else ""
    digits = 1 if (declared.percent or declared.unit) else 3

    def at(value: float | None) -> float | None:
        return None if value is None else value * scale

    return Estimate(at(stats_.mean), at(stats_.ci_low), at(stats_.ci_high), lambda v: f"{v:{sign}.{digits}f}")


def _unit(metric: str) -> str:
    """A column's short header with its unit: ``accuracy (%)``, ``within (°)``."""
    declared = SEED_METRICS[metric]
    return f"{declared.column} (%)" if declared.percent else declared.column


def summary_table(summaries: Sequence[VariantSummary]) -> Table:
    """One row per variant: its finished seeds, each figure of :data:`lab.analysis.seed_stats.SEED_METRICS` with its 95%
    interval, and the paired difference in accuracy to the baseline (percentage points)."""
    baseline = next((s.baseline for s in summaries if s.baseline is not None), None)
    columns = ("variant", "seeds", *(_unit(metric) for metric in SEED_METRICS))
    columns += (f"accuracy vs {baseline} (points)",) if baseline else ()
    rows = []
    for summary in summaries:
        row: list[Cell] = [summary.variant, summary.n]
        for metric in SEED_METRICS:
            found = summary.stats.get(metric)
            row.append(_seed_estimate(metric, found) if found is not None else None)
        if baseline:
            difference = summary.difference.get("test_acc")
            row.append(_seed_estimate("test_acc", difference, signed=True) if difference is not None else "baseline")
        rows.append(tuple(row))
    about = "; ".join(f"{_unit(metric)}: {declared.about}" for metric, declared in SEED_METRICS.items())
    return Table("summary", columns, tuple(rows), f"{SUMMARY_CAPTION} Columns: {about}.")


def runs_table(rows: Sequence[Mapping[str, Any]], name: str = "runs", caption: str = "") -> Table:
    """A table of plain rows (dicts of text and numbers, as the Compare page builds them), in the order of
    their keys as first seen."""
    columns = tuple(dict.fromkeys(key for row in rows for key in row))
    cells = tuple(tuple(_plain_value(row.get(column)) for column in columns) for row in rows)
    return Table(name, columns, cells, caption)


def _plain_value(value: Any) -> Cell:
    if value is None or isinstance(value, (str, int, float, Estimate)):
        return value
    return str(value)


def _cam_estimate(metric: str, value: float | None, low: float | None, high: float | None, mark: str) -> Estimate:
    spec = CAM_METRICS[metric]
    scale = 100.0 if spec.percent else 1.0

    def at(number: float | None) -> float | None:
        return None if number is None else number * scale

    digits = 1 if spec.percent else 3
    return Estimate(at(value), at(low), at(high), lambda v: f"{v:.{digits}f}", mark)


def _cam_column(metric: str) -> str:
    spec = CAM_METRICS[metric]
    return spec.label + (" (%)" if spec.percent else "") + (" ↑" if spec.higher_is_better else " ↓")


MARKS = {stats.BETTER: "better", stats.WORSE: "worse"}


def interpret_table(
    names: Sequence[str], results: Sequence[Mapping[str, CamResult | None]], over: str, method: str = "GradCAM"
) -> Table:
    """One row per variant (``over="seeds"``: each variant's :class:`SeedResult`) or run (``"images"``): each
    Grad-CAM metric with its 95% interval and, as a mark, the verdict against a random map (none: not
    distinguishable)."""
    columns = ("variant", "seeds" if over == "seeds" else "images", *(_cam_column(m) for m in stats.REPORTED))
    rows = []
    for name, per_metric in zip(names, results, strict=True):
        counts = [r.stats.n if isinstance(r, SeedResult) else r.n_images for r in per_metric.values() if r is not None]
        row: list[Cell] = [name, max(counts) if counts else 0]
        for metric in stats.REPORTED:
            result = per_metric.get(metric)
            if result is None:
                row.append(None)
                continue
            low, high = (
                (result.stats.ci_low, result.stats.ci_high)
                if isinstance(result, SeedResult)
                else (result.ci_low, result.ci_high)
            )
            row.append(_cam_estimate(metric, result.value, low, high, MARKS.get(result.verdict or "", "")))
        rows.append(tuple(row))
    interval = "Student's t interval over the training seeds" if over == "seeds" else "bootstrap interval over images"
    test = stats.SEED_TEST if over == "seeds" else stats.IMAGE_TEST
    caption = (
        f"{method} maps of the predicted class: each metric's mean with its 95% {interval} (arrow: the better "
        f"direction). A mark says the maps are better or worse than a random map on that metric ({test}, "
        f"{stats.CORRECTION}, 5% level); no mark: not distinguishable from a random map."
    )
    return Table(f"gradcam-metrics-{over}", columns, tuple(rows), caption)


def versus_reference_table(
    names: Sequence[str],
    results: Sequence[Mapping[str, CamResult | None]],
    reference: int,
    over: str,
) -> Table:
    """One row per variant but the reference (softmax): its difference to the reference on each metric,
    paired image by image or seed by seed, with its 95% interval and the outcome as a mark."""
    columns = ("variant", *(_cam_column(m) for m in stats.REPORTED))
    rows = []
    for i, (name, per_metric) in enumerate(zip(names, results, strict=True)):
        if i == reference:
            continue
        comparisons = stats.compare_all(per_metric, results[reference])
        row: list[Cell] = [name]
        for metric in stats.REPORTED:
            comparison = comparisons.get(metric)
            own = per_metric.get(metric)
            if comparison is None or own is None:
                row.append(None)
                continue
            outcome = verdicts.outcome(comparison, own) if comparison.p_adjusted is not None else ""
            estimate = _cam_estimate(
                metric, comparison.difference, comparison.ci_low, comparison.ci_high, MARKS.get(outcome, "")
            )
            spec = CAM_METRICS[metric]
            digits = 1 if spec.percent else 3
            row.append(dataclasses.replace(estimate, write=lambda v, d=digits: f"{v:+.{d}f}"))
        rows.append(tuple(row))
    pairing = "seed by seed" if over == "seeds" else "image by image"
    caption = (
        f"Each variant minus {names[reference]}, paired {pairing}, with its 95% interval. A mark says the variant is "
        f"better or worse than {names[reference]} on that metric (paired t-test, {stats.CORRECTION}, 5% level); "
        "better only where its own maps beat a random map."
    )
    return Table(f"gradcam-vs-{stats.REFERENCE_LOSS}-{over}", columns, tuple(rows), caption)
