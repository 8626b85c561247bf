"""The Compare page's figures of an experiment's variants over their seeds: plain summaries in
(:mod:`lab.analysis.seed_stats`), a ``go.Figure`` or table rows out. No Streamlit, no I/O.

Every figure draws what :func:`lab.analysis.seed_stats.summarize` computed and nothing else: each variant's mean with
its 95% confidence interval as an error bar, and every finished seed as a dot beside it, so a reader sees
both the interval and the runs it rests on. A variant with one seed has a dot and a mean but no bar; a
variant with no finished run is left out of the figures (the table says why).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from lab.analysis.seed_stats import METRIC_TITLES, PERCENT_METRICS, SEED_METRICS, Sweep, VariantSummary
from lab.analysis.statistics import Interval
from lab.figures.style import FONT, loss_colors
from lab.settings.experiment import loss_title, setting_symbol
from lab.shown_text import plotly_text

DOT_SPREAD = 0.18  # seeds' dots fan out this far either side of their variant (category width 1)
MEAN_OFFSET = 0.3  # the mean and its bar sit this far below the dots' center, so neither hides the other
LOG_AXIS_RATIO = 100.0  # a swept setting spanning this factor or more (lambda 0.0001..0.1) gets a log axis
LABEL_LINE = 16  # characters per line of a variant's name beside its row
GRID = "#EEEEEE"


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0.02, font=dict(size=14)),
        height=height,
        margin=dict(l=10, r=10, t=50, b=10),
        font=FONT,
        showlegend=False,
        plot_bgcolor="white",
        paper_bgcolor="white",
    )
    fig.update_yaxes(gridcolor=GRID, automargin=True)
    fig.update_xaxes(gridcolor=GRID, automargin=True)
    return fig


def _value_text(value: float, metric: str) -> str:
    return SEED_METRICS[metric].format(value)


def wrap_label(text: str, width: int = LABEL_LINE) -> str:
    """``text`` broken at spaces into lines of at most ``width`` characters (a longer word keeps its own
    line), each drawn as it reads (:func:`lab.shown_text.plotly_text`), joined by plotly's ``<br>``: a
    variant's name beside its row takes little of a narrow chart's width."""
    return "<br>".join(map(plotly_text, textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)))


def _dot_offsets(n: int) -> list[float]:
    """Evenly spread, deterministic offsets for ``n`` dots (seeds in order): no random jitter, so a
    rerun draws the same picture."""
    if n == 1:
        return [0.0]
    return [-DOT_SPREAD + 2 * DOT_SPREAD * i / (n - 1) for i in range(n)]


def _error_bar(stats: Interval) -> dict[str, Any]:
    if stats.ci_low is None or stats.ci_high is None:
        return dict(visible=False)
    return dict(
        type="data",
        symmetric=False,
        array=[stats.ci_high - stats.mean],
        arrayminus=[stats.mean - stats.ci_low],
        thickness=2,
        width=6,
    )


def _mean_hover(name: str, stats: Interval, metric: str) -> str:
    mean = _value_text(stats.mean, metric)
    if stats.ci_low is None or stats.ci_high is None:
        return f"{name}<br>{mean} (one seed: no interval)"
    low, high = _value_text(stats.ci_low, metric), _value_text(stats.ci_high, metric)
    return f"{name}<br>mean {mean} over {stats.n} seeds<br>95% CI {low} to {high}"


def _add_variant(fig: go.Figure, y: float, summary: VariantSummary, metric: str, color: str, name: str) -> None:
    """One variant's row at ``y`` (the axis runs downwards): its seeds' dots, then its mean with the
    interval just below them."""
    seeds = sorted(summary.values[metric])
    values = [summary.values[metric][seed] for seed in seeds]
    fig.add_trace(
        go.Scatter(
            x=values,
            y=[y - MEAN_OFFSET / 2 + offset for offset in _dot_offsets(len(seeds))],
            mode="markers",
            name=f"{name}: seeds",
            marker=dict(color=color, size=7, opacity=0.55, line=dict(color="white", width=0.5)),
            hovertext=[
                f"{name}<br>seed {seed}: {_value_text(v, metric)}" for seed, v in zip(seeds, values, strict=True)
            ],
            hoverinfo="text",
        )
    )
    stats = summary.stats[metric]
    fig.add_trace(
        go.Scatter(
            x=[stats.mean],
            y=[y + MEAN_OFFSET / 2],
            mode="markers",
            name=f"{name}: mean",
            marker=dict(color=color, size=11, symbol="diamond", line=dict(color="black", width=1)),
            error_x=dict(color=color, **_error_bar(stats)),
            hovertext=[_mean_hover(name, stats, metric)],
            hoverinfo="text",
        )
    )


def _value_axis(fig: go.Figure, metric: str, axis: str = "y") -> bool:
    """Title and tick format of the axis that carries ``metric``'s values; whether it is a percentage."""
    percent = metric in PERCENT_METRICS
    update = fig.update_xaxes if axis == "x" else fig.update_yaxes
    update(title=METRIC_TITLES[metric], tickformat=".1%" if percent else None)
    return percent


def variant_figure(summaries: Sequence[VariantSummary], metric: str, height: int | None = None) -> go.Figure:
    """``metric`` per variant, a row each (names read level at the left, however long): every finished
    seed a dot, the mean a diamond with its 95% CI as a bar. No bars from an axis: the values' axis may
    start anywhere. The variants keep their order, top to bottom (the first is the baseline), and their
    colors across every figure."""
    fig = go.Figure()
    _value_axis(fig, metric, "x")
    colors = loss_colors(len(summaries))
    shown = [(i, summary) for i, summary in enumerate(summaries) if metric in summary.stats]
    for y, (i, summary) in enumerate(shown):
        _add_variant(fig, float(y), summary, metric, colors[i], plotly_text(summary.variant))
    fig.update_yaxes(
        tickvals=list(range(len(shown))),
        ticktext=[wrap_label(summary.variant) for _, summary in shown],
        range=[len(shown) - 0.4, -0.6],  # the first variant on top
        showgrid=False,
        zeroline=False,
    )
    most = max((summary.n for _, summary in shown), default=0)
    title = f"{METRIC_TITLES[metric]} by variant"
    note = "dots: seeds · diamond: mean · bar: 95% CI" if most > 1 else "dots: seeds (one each: no interval)"
    return _layout(fig, f"{title}<br><sup>{note}</sup>", height or 130 + 55 * len(shown))


def is_numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def sweep_axis(values: Sequence[Any]) -> str:
    """``log`` for positive numbers spanning :data:`LOG_AXIS_RATIO` or more, ``linear`` for other numbers,
    ``category`` for choices (text, booleans)."""
    if not is_numeric(values):
        return "category"
    if min(values) > 0 and max(values) / min(values) >= LOG_AXIS_RATIO:
        return "log"
    return "linear"


def sweep_figure(sweep: Sweep, metric: str, height: int = 340) -> go.Figure:
    """``metric`` against the swept hyperparameter of one loss's variants: the means joined by a line with
    their 95% CIs as bars, every seed a dot at its variant's value."""
    fig = go.Figure()
    _value_axis(fig, metric)
    shown = [summary for summary in sweep.variants if metric in summary.stats]
    values = [summary.loss_params[sweep.setting] for summary in shown]
    axis = sweep_axis(values)
    symbol = setting_symbol(sweep.loss, sweep.setting)
    xs: list[Any] = values if axis != "category" else [str(v) for v in values]
    (color,) = loss_colors(1)
    for x, summary in zip(xs, shown, strict=True):
        name = plotly_text(summary.variant)
        seeds = sorted(summary.values[metric])
        fig.add_trace(
            go.Scatter(
                x=[x] * len(seeds),
                y=[summary.values[metric][seed] for seed in seeds],
                mode="markers",
                name=f"{symbol}={x}: seeds",
                marker=dict(color=color, size=7, opacity=0.45),
                hovertext=[
                    f"{name}<br>seed {seed}: {_value_text(summary.values[metric][seed], metric)}" for seed in seeds
                ],
                hoverinfo="text",
            )
        )
    means = [summary.stats[metric] for summary in shown]
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[stats.mean for stats in means],
            mode="lines+markers",
            name="mean",
            line=dict(color=color, width=2),
            marker=dict(color=color, size=10, symbol="diamond", line=dict(color="black", width=1)),
            error_y=dict(
                type="data",
                symmetric=False,
                array=[0.0 if s.ci_high is None else s.ci_high - s.mean for s in means],
                arrayminus=[0.0 if s.ci_low is None else s.mean - s.ci_low for s in means],
                color=color,
                thickness=2,
                width=6,
            ),
            hovertext=[
                _mean_hover(plotly_text(summary.variant), s, metric) for summary, s in zip(shown, means, strict=True)
            ],
            hoverinfo="text",
        )
    )
    fig.update_xaxes(type=axis, title=symbol)
    if axis != "category":
        fig.update_xaxes(tickvals=values, ticktext=[f"{v:g}" for v in values])
    title = f"{METRIC_TITLES[metric]} against {symbol} · {loss_title(sweep.loss)}"
    return _layout(fig, f"{title}<br><sup>dots: seeds · line: means · bars: 95% CI</sup>", height)


def _interval_text(stats: Interval | None, metric: str, signed: bool = False) -> str:
    """``96.1% [95.3, 96.9]`` (accuracy in percent, angles in degrees, each figure written as
    :meth:`lab.analysis.seed_stats.SeedMetric.format` writes it), ``96.1%`` with one seed."""
    if stats is None:
        return "–"
    declared = SEED_METRICS[metric]
    mean = declared.number(stats.mean, signed) + ("%" if declared.percent else declared.unit)
    if stats.ci_low is None or stats.ci_high is None:
        return mean
    return f"{mean} [{declared.number(stats.ci_low, signed)}, {declared.number(stats.ci_high, signed)}]"


def summary_rows(summaries: Sequence[VariantSummary]) -> list[dict[str, Any]]:
    """One table row per variant: finished seeds of runs, each figure's mean with its 95% CI in brackets,
    and the paired difference to the baseline (accuracy in points, angles in degrees)."""
    rows = []
    for summary in summaries:
        runs = summary.n + len(summary.left_out)
        row: dict[str, Any] = {"variant": summary.variant, "seeds": f"{summary.n} of {runs}"}
        for metric in METRIC_TITLES:
            row[METRIC_TITLES[metric]] = _interval_text(summary.stats.get(metric), metric)
        if summary.baseline is None:
            row["accuracy vs baseline"] = "baseline"
        else:
            difference = summary.difference.get("test_acc")
            row["accuracy vs baseline"] = _interval_text(difference, "test_acc", signed=True).replace("%", " pts")
        row["notes"] = "; ".join(summary.notes())
        rows.append(row)
    return rows
