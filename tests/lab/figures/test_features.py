"""The feature-space figure as Play and a projector show it: every animation frame is redrawn with that epoch's
title and never tweened (points stay on the unit circle), and presentation mode's scaling makes every text,
axes included, larger and dark."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from lab import figures


def _frames(shaded: bool = False) -> list[figures.FeatureFrame]:
    rng = np.random.default_rng(0)
    shading = figures.Shading(np.arange(360) % 3) if shaded else None
    return [
        figures.FeatureFrame(epoch, rng.normal(size=(30, 2)), rng.normal(size=(3, 2)), f"epoch {epoch}", shading)
        for epoch in range(4)
    ]


@pytest.mark.parametrize("shaded", [False, True])
def test_play_redraws_every_frame_with_its_own_title_and_never_tweens_points_off_the_circle(shaded):
    frames = _frames(shaded)
    fig = figures.feature_figure(frames, np.arange(30) % 3, ["a", "b", "c"], start=-1)
    assert [frame.layout.title.text for frame in fig.frames] == [f.title for f in frames]
    play = fig.layout.updatemenus[0].buttons[0].args[1]
    assert play["frame"]["redraw"] is True, "plotly draws a frame's title only on a redraw"
    assert play["transition"]["duration"] == 0, "a tween draws points on the chord between two epochs"
    for frame in fig.frames:
        points = [t for t in frame.data if t.mode == "markers" and t.name in ("a", "b", "c")]
        radius = np.hypot(np.concatenate([t.x for t in points]), np.concatenate([t.y for t in points]))
        assert radius.min() >= 1 - figures.JITTER and radius.max() <= 1


@pytest.mark.parametrize("dim", [2, 3])
def test_a_frame_moves_the_points_and_the_figure_keeps_what_every_frame_shares(dim):
    """A frame carries each class's positions; the images' indices and hover texts, the same at every epoch,
    are sent once with the figure's traces (plotly merges a frame into them, so a click or a hover after Play
    still finds them)."""
    rng = np.random.default_rng(0)
    frames = [figures.FeatureFrame(e, rng.normal(size=(30, dim)), rng.normal(size=(3, dim)), f"{e}") for e in range(4)]
    fig = figures.feature_figure(frames, np.arange(30) % 3, ["a", "b", "c"], indices=np.arange(30) + 100, start=-1)
    points = [t for t in fig.data if t.name in ("a", "b", "c")]
    assert sorted(np.concatenate([t.customdata for t in points]).tolist()) == list(range(100, 130))
    assert all(len(t.hovertext) == len(t.customdata) for t in points)
    for frame in fig.frames:
        moved = [t for t in frame.data if t.name in ("a", "b", "c")]
        assert len(moved) == 3 and all(t.customdata is None and t.hovertext is None for t in moved)
        assert sum(len(t.x) for t in moved) == 30
    positions = [fig.data.index(t) for t in points]
    moving = fig.frames[0].traces
    assert [moving[i] for i, t in enumerate(fig.frames[0].data) if t.name in ("a", "b", "c")] == positions


def test_presentation_scaling_enlarges_and_darkens_every_text_axes_included():
    fig = go.Figure(go.Bar(x=[1, 2], y=[3, 4]), layout=dict(title=dict(text="t"), legend=dict(font=dict(size=11))))
    fig.update_xaxes(title="angle")
    fig.update_yaxes(tickfont=dict(size=10))
    figures.scaled(fig, 1.5)
    axes = fig.layout.xaxis, fig.layout.yaxis
    assert [a.tickfont.size for a in axes] == [18, 15] and axes[0].title.font.size == 18
    inks = [fig.layout.font.color, fig.layout.title.font.color, fig.layout.legend.font.color]
    inks += [a.tickfont.color for a in axes] + [a.title.font.color for a in axes]
    assert set(inks) == {figures.PROJECTOR_INK}
