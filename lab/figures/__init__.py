"""Plotly figure builders: plain data in, a ``go.Figure`` out. No Streamlit, no I/O.

One module per kind of figure: :mod:`~lab.figures.style` (palettes, font, layout, projector scaling),
:mod:`~lab.figures.features` (the unit circle or sphere, frames and their animation, projections),
:mod:`~lab.figures.angles` (angle histograms, direction spacing), :mod:`~lab.figures.curves` (training curves,
metric bars), :mod:`~lab.figures.loss_field` (the loss playground) and :mod:`~lab.figures.variants` (variants
over seeds, sweeps). The drawing API pages use is re-exported here.
"""

from __future__ import annotations

from lab.figures.style import PROJECTOR_INK, TOL_MUTED, class_colors, scaled
from lab.figures.features import FeatureFrame, JITTER, Shading, feature_figure, raw_reach
from lab.figures.projections import feature_scatter, projection_scatter
from lab.figures.angles import angle_histogram, direction_spacing
from lab.figures.curves import metric_bars, training_curves
from lab.figures.loss_field import loss_field_figure

__all__ = [
    "FeatureFrame",
    "JITTER",
    "PROJECTOR_INK",
    "Shading",
    "TOL_MUTED",
    "angle_histogram",
    "class_colors",
    "direction_spacing",
    "feature_figure",
    "feature_scatter",
    "loss_field_figure",
    "metric_bars",
    "projection_scatter",
    "raw_reach",
    "scaled",
    "training_curves",
]
