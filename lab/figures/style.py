"""How every LossLens figure looks: the font, the layout and the palettes. Classes use a colour-blind-safe
palette (Paul Tol's "muted" plus grey for ten classes; a perceptual ramp for more); losses use Tol's "vibrant"
palette, so a loss is never drawn in a class's colour. :func:`scaled` enlarges any figure for a projector.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.colors import hex_to_rgb, sample_colorscale

TOL_MUTED = (
    "#CC6677",
    "#332288",
    "#DDCC77",
    "#117733",
    "#88CCEE",
    "#882255",
    "#44AA99",
    "#999933",
    "#AA4499",
    "#7F7F7F",
)


LOSS_COLORS = ("#0077BB", "#EE7733", "#009988", "#EE3377", "#33BBEE", "#CC3311", "#555555", "#BBBBBB")
BAR_COLOR = "#4A5A70"  # single-metric bars: the x axis names the loss, colour would only repeat it
BAND_COLOR = "rgba(60, 60, 60, 0.22)"
REGION_ALPHA = 0.16
FONT = dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=12)
PROJECTOR_INK = "#111111"  # every text of a figure in presentation mode


def class_colors(n_classes: int) -> list[str]:
    if n_classes <= len(TOL_MUTED):
        return list(TOL_MUTED[:n_classes])
    return sample_colorscale("Turbo", [i / max(n_classes - 1, 1) for i in range(n_classes)])


def loss_colors(n_losses: int) -> list[str]:
    return [LOSS_COLORS[i % len(LOSS_COLORS)] for i in range(n_losses)]


def rgba_text(color: str, alpha: float) -> str:
    if color.startswith("#"):
        red, green, blue = hex_to_rgb(color)
    else:  # "rgb(r, g, b)" from sample_colorscale
        red, green, blue = (int(float(v)) for v in color[color.index("(") + 1 : -1].split(",")[:3])
    return f"rgba({red}, {green}, {blue}, {alpha})"


def on_white(color: str, alpha: float) -> str:
    """``color`` at opacity ``alpha`` over white, as an opaque colour (3-D surfaces blend badly when see-through)."""
    red, green, blue = (int(v) for v in rgba_text(color, 1).removeprefix("rgba(").split(",")[:3])
    mix = [round(alpha * v + (1 - alpha) * 255) for v in (red, green, blue)]
    return f"rgb({mix[0]}, {mix[1]}, {mix[2]})"


def styled(fig: go.Figure, title: str | None = None, height: int = 380, legend: bool = True) -> go.Figure:
    lines = title.count("<br>") + 1 if title else 0
    fig.update_layout(
        title=dict(text=title, x=0.02, font=dict(size=14)) if title else None,
        height=height,
        margin=dict(l=10, r=10, t=(22 + 18 * lines if title else 10) + (24 if legend else 0), b=10),
        font=FONT,
        showlegend=legend,
        legend=dict(itemsizing="constant", font=dict(size=11), orientation="h", yanchor="bottom", y=1.0, x=0),
        plot_bgcolor="white",
        paper_bgcolor="white",
    )
    return fig


def _scale_trace(trace: go.BaseTraceType | dict, scale: float) -> None:
    for part in ("marker", "line"):
        style = trace[part] if part in trace else None
        if style is None:
            continue
        for attribute in ("size", "width"):
            value = style[attribute] if attribute in style else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                style[attribute] = value * scale


def scaled(fig: go.Figure, scale: float) -> go.Figure:
    """``fig`` with its fonts, markers, lines, margins and height multiplied by ``scale`` and its text in
    :data:`PROJECTOR_INK` (presentation mode: a projector washes plotly's grey text out); ``scale`` 1
    returns it unchanged."""
    if scale == 1:
        return fig
    layout = fig.layout
    fig.update_layout(font_size=(layout.font.size or FONT["size"]) * scale, font_color=PROJECTOR_INK)
    if layout.height:
        fig.update_layout(height=layout.height * scale)
    if layout.title and layout.title.text:
        fig.update_layout(title_font_size=(layout.title.font.size or 14) * scale, title_font_color=PROJECTOR_INK)
    if layout.legend and layout.legend.font and layout.legend.font.size:
        fig.update_layout(legend_font_size=layout.legend.font.size * scale)
    if layout.margin and layout.margin.t is not None:
        fig.update_layout(margin_t=layout.margin.t * scale, margin_b=(layout.margin.b or 0) * scale)
    for axis in (*fig.select_xaxes(), *fig.select_yaxes()):  # Streamlit's theme gives axes small grey text
        axis.tickfont.size = (axis.tickfont.size or FONT["size"]) * scale
        axis.title.font.size = (axis.title.font.size or FONT["size"]) * scale
        axis.tickfont.color = axis.title.font.color = PROJECTOR_INK
    fig.update_layout(legend_font_color=PROJECTOR_INK)
    for annotation in layout.annotations:
        annotation.font.size = (annotation.font.size or FONT["size"]) * scale
    for menu in layout.updatemenus:
        menu.font.size = (menu.font.size or FONT["size"]) * scale
    for trace in fig.data:
        _scale_trace(trace, scale)
    for frame in fig.frames:  # a frame's title keeps the figure's font: frames only set its text
        for trace in frame.data:
            _scale_trace(trace, scale)
    return fig


def discrete_scale(colors: Sequence[str]) -> list[list]:
    """A plotly colour scale that maps the integers 0..n-1 (with cmin -0.5, cmax n-0.5) to ``colors``."""
    n = len(colors)
    scale = []
    for i, color in enumerate(colors):
        scale += [[i / n, color], [(i + 1) / n, color]]
    return scale
