"""Charts fit for a paper: a "figure" style sized for a two-column page, and static export to SVG, PDF and
PNG at print resolution.

The style draws a chart at its printed size: a figure one column wide is :data:`COLUMN_INCHES` wide, one
across the page :data:`PAGE_INCHES`, with text at :data:`FONT_POINTS` (a paper's captions are 8 to 9 pt), in
black on white with black axis lines, so it reads the same on paper as in the PDF. Plotly lays a figure out
in CSS pixels (96 to the inch), which is what the PDF's page size is measured in; the PNG is the same figure
rendered at :data:`DPI` dots per inch.

Export uses kaleido, which drives a Chrome or Chromium already on the machine (Debian's ``chromium``, or
the one ``BROWSER_PATH`` names) with the plotly.js that comes with plotly: no network is needed. Opening
a browser takes seconds, so :func:`exporter` keeps one open for a batch of figures.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

import plotly.graph_objects as go

log = logging.getLogger(__name__)

CSS_DPI = 96  # plotly's pixels per inch: kaleido's PDF page is the figure's size at this density
DPI = 300  # the PNG's print resolution
COLUMN_INCHES = 3.5  # one column of a two-column paper (IEEE 3.5 in, ACM 3.33 in)
PAGE_INCHES = 7.0  # both columns
FONT_POINTS = 8.0
TITLE_POINTS = 9.0
INK = "#000000"
GRID = "#E3E3E3"  # faint enough to read the data over, dark enough to survive a printer
FONT_FAMILY = "Helvetica, Arial, Liberation Sans, DejaVu Sans, sans-serif"
FORMATS = ("svg", "pdf", "png")
WIDTHS = {"column": COLUMN_INCHES, "page": PAGE_INCHES}
APP_FONT_PX = 12  # the type size the app's charts are laid out for
PDF_MAGIC = b"%PDF-"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ExportError(RuntimeError):
    """A figure could not be written as a static file; the message says what to install or change."""


def points_to_px(points: float) -> float:
    """Type size in plotly's CSS pixels."""
    return points * CSS_DPI / 72


def paper_style(fig: go.Figure, width: str = "column", height_inches: float | None = None) -> go.Figure:
    """A copy of ``fig`` drawn for print: ``width`` ``"column"`` or ``"page"`` of a two-column paper, its
    height scaled with its width from the app's layout (or ``height_inches``), every text
    :data:`FONT_POINTS` in black, black axis lines with ticks, faint grid lines, a white page, and
    no animation controls (a page cannot play)."""
    if width not in WIDTHS:
        raise ValueError(f"width must be one of {', '.join(WIDTHS)}, got {width!r}")
    out = go.Figure(copy.deepcopy(fig.to_dict()))
    width_px = WIDTHS[width] * CSS_DPI
    font = points_to_px(FONT_POINTS)
    if height_inches is not None:
        height_px = height_inches * CSS_DPI
    else:  # the app's charts stack lines of text (a variant per row): their height follows the type size
        height_px = (out.layout.height or 380) * font / APP_FONT_PX
    out.frames = ()
    out.layout.updatemenus, out.layout.sliders = [], []  # update_layout would merge, leaving the Play button
    out.update_layout(
        width=round(width_px),
        height=round(max(height_px, 1.2 * CSS_DPI)),
        font=dict(family=FONT_FAMILY, size=font, color=INK),
        paper_bgcolor="white",
        plot_bgcolor="white",
        legend=dict(font=dict(size=font, color=INK), bgcolor="rgba(255,255,255,0)"),
    )
    margin = out.layout.margin
    out.update_layout(
        margin=dict(
            l=min(margin.l if margin.l is not None else 10, 40),
            r=min(margin.r if margin.r is not None else 10, 40),
            t=min(margin.t if margin.t is not None else 40, 60),
            b=min(margin.b if margin.b is not None else 10, 40),
        )
    )
    titled = [a for a in out.select_xaxes() if a.visible is not False and a.title and a.title.text]
    if titled and out.layout.margin.b < 3.4 * font:
        # room for the tick labels and the title under them: the browser that exports a figure does not always
        # finish growing an automatic margin before the page is captured, and the title was cut off
        out.update_layout(margin_b=round(3.4 * font))
    if out.layout.title and out.layout.title.text:
        out.update_layout(title_font=dict(size=points_to_px(TITLE_POINTS), color=INK, family=FONT_FAMILY))
    for axis in (*out.select_xaxes(), *out.select_yaxes()):
        axis.update(
            showline=True,
            linecolor=INK,
            linewidth=1,
            ticks="outside" if axis.visible is not False else "",
            tickcolor=INK,
            tickfont=dict(size=font, color=INK),
            title_font=dict(size=font, color=INK),
            gridcolor=GRID,
            zerolinecolor=GRID,
        )
    for annotation in out.layout.annotations:
        annotation.font = dict(size=font, color=INK, family=FONT_FAMILY)
    for trace in out.data:
        marker = getattr(trace, "marker", None)
        bars = [trace.colorbar] if "colorbar" in trace and trace.showscale is not False else []
        if marker is not None and "colorbar" in marker and marker.showscale:
            bars.append(marker.colorbar)
        for bar in bars:
            bar.update(tickfont=dict(size=font, color=INK), title_font=dict(size=font, color=INK))
    return out


# ---------------------------------------------------------------- static export


_server_open = False


@contextlib.contextmanager
def exporter() -> Iterator[None]:
    """Keep one browser open for the figures exported inside the block (each export otherwise opens its
    own, which takes seconds). Nested blocks share the outer one."""
    global _server_open
    if _server_open:
        yield
        return
    kaleido = _kaleido()
    try:
        # no MathJax: the figures use none, and its default source is a CDN an offline machine cannot reach
        kaleido.start_sync_server(mathjax=False, silence_warnings=True)
    except Exception as err:  # choreographer raises its own types when Chrome is missing or will not start
        raise ExportError(_no_browser(err)) from None
    _server_open = True
    try:
        yield
    finally:
        _server_open = False
        kaleido.stop_sync_server(silence_warnings=True)


def _kaleido() -> ModuleType:
    try:
        import kaleido
    except ImportError:
        raise ExportError("static export needs kaleido: pip install -r requirements.txt") from None
    return kaleido


def _no_browser(err: Exception) -> str:
    return (
        f"static export needs Chrome or Chromium and could not start one ({type(err).__name__}: {err}); install "
        "one (Debian: apt install chromium) or point BROWSER_PATH at its executable"
    )


def to_bytes(fig: go.Figure, fmt: str, dpi: int = DPI) -> bytes:
    """``fig`` as ``fmt`` (svg, pdf or png) at its own size; a PNG at ``dpi`` dots per inch."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    kaleido = _kaleido()
    layout = fig.layout
    opts = {
        "format": fmt,
        "width": layout.width or 700,
        "height": layout.height or 500,
        "scale": dpi / CSS_DPI if fmt == "png" else 1,
    }
    with exporter(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            data = kaleido.calc_fig_sync(fig.to_dict(), opts=opts)
        except ExportError:
            raise
        except Exception as err:
            raise ExportError(_no_browser(err)) from None
    log.debug("exported a %s of %d bytes", fmt, len(data))
    return _with_dpi(data, dpi) if fmt == "png" else data


def _with_dpi(png: bytes, dpi: int) -> bytes:
    """``png`` stamped with its resolution, so a word processor or LaTeX places it at its printed size."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        out = io.BytesIO()
        image.save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()


def write_figure(fig: go.Figure, stem: Path | str, formats: Sequence[str] = FORMATS, dpi: int = DPI) -> list[Path]:
    """Write ``fig`` as ``stem.svg``, ``stem.pdf`` and ``stem.png`` (``formats``); the paths written."""
    stem = Path(stem)
    written = []
    with exporter():
        for fmt in formats:
            path = stem.with_name(f"{stem.name}.{fmt}")
            path.write_bytes(to_bytes(fig, fmt, dpi))
            written.append(path)
    return written


def paper_files(fig: go.Figure, width: str = "column", dpi: int = DPI) -> dict[str, bytes]:
    """``fig`` in the paper style as {format: bytes} for SVG, PDF and PNG (a page's download buttons)."""
    styled = paper_style(fig, width)
    with exporter():
        return {fmt: to_bytes(styled, fmt, dpi) for fmt in FORMATS}
