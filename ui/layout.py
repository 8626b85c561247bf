"""Small layout helpers the pages share: grids of per-loss panels, charts (scaled for presentation mode),
charts a click picks from, legends, one progress bar over per-run work, and the presentation-mode switch."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from lab.datasets.images import enlarge, whole_factor
from lab.figures.style import class_colors, scaled
from lab.progress import Progress
from ui import session
from ui.text import plain

Item = TypeVar("Item")
Result = TypeVar("Result")
PER_ROW = 3
PRESENTATION_SCALE = 1.5
PRESENTED = 2  # panels side by side in presentation mode: a loss beside the one it is compared with
PRESENTATION_CSS = """
<style>
  html { font-size: 21px; }
  [data-testid="stMainBlockContainer"] { padding: 3.6rem 1.5rem 2rem 1.5rem; max-width: 100%; }
  [data-testid="stCaptionContainer"] { font-size: 0.95rem; }
  h1 { font-size: 1.9rem !important; padding: 0 !important; }
</style>
"""
CHART_CONFIG = {"displaylogo": False}


# ---------------------------------------------------------------- presentation mode


def presenting() -> bool:
    """Whether presentation mode is on (the switch, or ``?present=1`` on the first view of a session)."""
    if session.PRESENTATION not in st.session_state:
        st.session_state[session.PRESENTATION] = st.query_params.get(session.URL_PRESENTATION) == "1"
    return bool(st.session_state[session.PRESENTATION])


def presentation_scale() -> float:
    """How much larger charts are drawn: :data:`PRESENTATION_SCALE` in presentation mode, else 1."""
    return PRESENTATION_SCALE if presenting() else 1.0


def _presentation_changed() -> None:
    if st.session_state[session.PRESENTATION]:
        st.query_params[session.URL_PRESENTATION] = "1"
    else:
        st.query_params.pop(session.URL_PRESENTATION, None)


def presentation_switch() -> None:
    """The switch for a projector, top right of every page; in presentation mode, larger type and charts,
    two losses side by side (a Left and a Right picker choose them) and the sidebar collapsed."""
    presenting()
    _, right = st.columns([5, 1])
    right.toggle(
        "Presentation",
        key=session.PRESENTATION,
        on_change=_presentation_changed,
        help="For a projector: larger, darker text, markers and charts, two losses side by side (you choose "
        "which), the sidebar folded away. "
        "Add ?present=1 to a link to open it this way.",
    )
    if presenting():
        st.html(PRESENTATION_CSS)


def per_row(default: int = PER_ROW) -> int:
    """Panels per row: at most :data:`PRESENTED` in presentation mode (two losses side by side fill a
    projector's screen), else ``default``."""
    return min(default, PRESENTED) if presenting() else default


def shown(
    items: Sequence[Item], label: Callable[[Item], str], key: str, where: Sequence[Any] | None = None
) -> list[Item]:
    """All of ``items``, or in presentation mode the two that a Left and a Right picker choose (by default
    the first two: the first is usually softmax, the baseline a margin loss is shown beside), in the two
    containers ``where`` (else a row of their own). Picking one item twice shows it once."""
    if not presenting() or len(items) <= PRESENTED:
        return list(items)
    names = [label(item) for item in items]
    left, right = where if where is not None else st.columns([1, 1, 2])[:PRESENTED]
    chosen = [
        left.selectbox("Left", names, index=0, key=f"{key}_left"),
        right.selectbox("Right", names, index=1, key=f"{key}_right"),
    ]
    return [items[names.index(name)] for name in dict.fromkeys(chosen)]


# ---------------------------------------------------------------- grids and charts


def grid(items: Sequence[Item], per_row: int = PER_ROW) -> Iterator[tuple[Any, Item]]:
    """(column, item) pairs laying ``items`` out left to right, ``per_row`` to a row."""
    for start in range(0, len(items), per_row):
        columns = st.columns(per_row)
        yield from zip(columns, items[start : start + per_row], strict=False)


def chart(where: Any, fig: go.Figure, key: str, scale: float | None = None) -> None:
    """Draw ``fig`` in ``where`` (a column, ``st``), enlarged in presentation mode; ``scale=1`` for a figure
    already scaled (a cached one, which must not be changed)."""
    where.plotly_chart(scaled(fig, presentation_scale() if scale is None else scale), key=key, config=CHART_CONFIG)


def selection_round() -> int:
    """Bumped by every pick: charts keyed with it are new widgets, so their old selections are gone."""
    return int(st.session_state.get(session.SELECTION_ROUND, 0))


def _picked(key: str, on_pick: Callable[[dict], None]) -> None:
    state = st.session_state.get(key)
    points = state["selection"]["points"] if state and state.get("selection") else []
    points = [point for point in points if "customdata" in point]
    if points:
        on_pick(points[-1])
        st.session_state[session.SELECTION_ROUND] = selection_round() + 1


def pickable_chart(
    where: Any, fig: go.Figure, key: str, on_pick: Callable[[dict], None], scale: float | None = None
) -> None:
    """Draw ``fig`` in ``where``; a click on a point calls ``on_pick`` with it (its ``customdata``) before
    the rerun, and clears every chart's selection (the pages ring the picked point themselves). ``scale``
    as for :func:`chart`."""
    widget_key = f"{key}-{selection_round()}"
    where.plotly_chart(
        scaled(fig, presentation_scale() if scale is None else scale),
        key=widget_key,
        on_select=lambda: _picked(widget_key, on_pick),
        selection_mode="points",
        config=CHART_CONFIG,
    )


def pick_image(point: dict) -> None:
    """``on_pick`` for charts whose points carry a test-image index: show that image in the inspector."""
    st.session_state[session.INSPECT_INDEX] = int(np.ravel(point["customdata"])[0])


def picked_image() -> int | None:
    """The test-image index the inspector shows (picked in a chart or typed), or None before any."""
    value = st.session_state.get(session.INSPECT_INDEX)
    return None if value is None else int(value)


def class_legend(class_names: Sequence[str]) -> None:
    """One line of coloured swatches naming the classes (shared by every panel above it)."""
    if len(class_names) > 20:
        st.caption(f"{len(class_names)} classes, coloured along a rainbow scale.")
        return
    size = "1.05rem" if presenting() else "0.85rem"  # read from the back of a room in presentation mode
    swatches = " ".join(
        f'<span style="white-space:nowrap;margin-right:0.8em"><span style="display:inline-block;width:0.75em;'
        f'height:0.75em;border-radius:2px;background:{color};margin-right:0.3em"></span>{name}</span>'
        for name, color in zip(class_names, class_colors(len(class_names)), strict=True)
    )
    st.markdown(f'<div style="font-size:{size};line-height:1.8">{swatches}</div>', unsafe_allow_html=True)


def crisp(image: np.ndarray, min_side: int = 160) -> np.ndarray:
    """An H x W x 3 image enlarged by a whole factor with nearest-neighbour, so 8x8 digits stay sharp
    in the browser instead of being smoothed."""
    return enlarge(image, whole_factor(image.shape[0], image.shape[1], min_side))


def each_with_progress(
    items: Sequence[Item], label: Callable[[Item], str], work: Callable[[Item, Progress], Result]
) -> list[Result]:
    """``work(item, report)`` for every item, under one progress bar: ``report(fraction, text)`` sets it
    to ``(i + fraction) / len(items)`` with the item's label and ``text``. The bar appears at the first
    report, so work that reports nothing (a cache hit) draws none, and it goes when all is done."""
    bar = None
    results = []
    for i, item in enumerate(items):

        def report(fraction: float, text: str, i: int = i, item: Item = item) -> None:
            nonlocal bar
            share, said = min(1.0, (i + fraction) / len(items)), plain(f"{label(item)}: {text}")
            if bar is None:
                bar = st.progress(share, text=said)
            else:
                bar.progress(share, text=said)

        results.append(work(item, report))
    if bar is not None:
        bar.empty()
    return results
