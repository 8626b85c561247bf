"""The paper style and static export of a chart."""

from __future__ import annotations

import io
import re

import plotly.graph_objects as go
import pytest
from PIL import Image

from lab.reports import paper
from tests.browser import requires_chromium


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
