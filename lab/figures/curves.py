"""Training curves over epochs and bars of one metric per loss."""

from __future__ import annotations

import plotly.graph_objects as go

from lab.figures.style import BAR_COLOR, loss_colors, styled
from lab.shown_text import plotly_text


def training_curves(
    histories: dict[str, list[dict]], key: str, title: str, height: int = 280, percent: bool = False
) -> go.Figure:
    """One line per loss of a per-epoch metric (e.g. train_loss, test_acc); the losses' names are text."""
    fig = go.Figure()
    for color, (name, history) in zip(loss_colors(len(histories)), histories.items(), strict=True):
        if history:
            fig.add_trace(
                go.Scatter(
                    x=[m["epoch"] for m in history],
                    y=[m[key] for m in history],
                    name=plotly_text(name),
                    mode="lines+markers",
                    line=dict(color=color, width=2),
                    marker=dict(size=5),
                )
            )
    fig.update_xaxes(
        title="epoch",
        gridcolor="#EEEEEE",
        rangemode="tozero",
        dtick=max(1, len(max(histories.values(), key=len, default=[])) // 10),
    )
    fig.update_yaxes(gridcolor="#EEEEEE", tickformat=".0%" if percent else None)
    styled(fig, title, height)
    # a legend of several rows (a run per variant and seed) would climb over the title: the title keeps the
    # top of the frame and pushes the legend and the plot below it
    return fig.update_layout(
        title=dict(yref="container", y=1, yanchor="top", automargin=True, pad=dict(t=8)), margin_t=10
    )


def metric_bars(values: dict[str, float], title: str, height: int | None = None, percent: bool = False) -> go.Figure:
    """One horizontal bar per loss (names can be long) for a single metric of the Compare page. Every bar
    starts at zero, so the bars' lengths compare as their numbers do (an axis zoomed to the values' spread
    drew 86.4% as half of 87.0%); percentages on a 0-100% axis. Each bar carries its value, inside the bar
    when it fits, else just past its end. The losses' names are text."""
    numbers = list(values.values())
    names = [plotly_text(name) for name in values]
    fig = go.Figure(
        go.Bar(
            y=names,
            x=numbers,
            orientation="h",
            marker_color=BAR_COLOR,
            text=[f"{v:.1%}" if percent else f"{v:.2f}" for v in numbers],
            textposition="auto",
            cliponaxis=False,
            hovertemplate="%{y}: %{text}<extra></extra>",
        )
    )
    low, high = min([*numbers, 0.0]), max([*numbers, 0.0])
    if percent:
        fig.update_xaxes(range=[min(low, 0.0), max(high, 1.0)], tickformat=".0%", dtick=0.25)
    else:
        pad = 0.25 * (high - low) or 1.0  # room past the longest bar for a value that does not fit inside
        fig.update_xaxes(range=[low - pad if low < 0 else 0.0, high + pad if high > 0 else 0.0], nticks=4)
    fig.update_xaxes(gridcolor="#EEEEEE", zeroline=True, zerolinecolor="#999999")
    fig.update_yaxes(autorange="reversed", automargin=True)
    styled(fig, title, height or 70 + 30 * len(names), legend=False)
    return fig.update_layout(margin_r=30)  # room for the last tick's label ("100%") centered on the axis's end
