"""The composed figure: feature spaces above Grad-CAM maps, a column per loss."""

from __future__ import annotations

import numpy as np

from lab.reports import paper
from lab.reports.composed import Column, composed_figure


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
