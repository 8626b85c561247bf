"""Small layout helpers the pages share: grids of per-loss panels, selectable charts, legends."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from lab.figures import class_colours
from lab.images import enlarge, whole_factor

Item = TypeVar("Item")
PER_ROW = 3


def grid(items: Sequence[Item], per_row: int = PER_ROW) -> Iterator[tuple[Any, Item]]:
    """(column, item) pairs laying ``items`` out left to right, ``per_row`` to a row."""
    for start in range(0, len(items), per_row):
        columns = st.columns(per_row)
        yield from zip(columns, items[start : start + per_row], strict=False)


def plotly_selectable(column: Any, fig: go.Figure, key: str, selectable: bool = True) -> list[int]:
    """Draw ``fig`` in ``column``; return the image indices (customdata) of the points the user selected."""
    if not selectable:
        column.plotly_chart(fig, key=key, config={"displaylogo": False})
        return []
    event = column.plotly_chart(fig, key=key, on_select="rerun", selection_mode="points", config={"displaylogo": False})
    points = event.selection.points if event and event.selection else []
    return [int(p["customdata"]) for p in points if "customdata" in p]


def class_legend(class_names: Sequence[str]) -> None:
    """One line of coloured swatches naming the classes (shared by every panel above it)."""
    if len(class_names) > 20:
        st.caption(f"{len(class_names)} classes, coloured along a rainbow scale.")
        return
    swatches = " ".join(
        f'<span style="white-space:nowrap;margin-right:10px"><span style="display:inline-block;width:10px;'
        f'height:10px;border-radius:2px;background:{colour};margin-right:4px"></span>{name}</span>'
        for name, colour in zip(class_names, class_colours(len(class_names)), strict=True)
    )
    st.markdown(f'<div style="font-size:0.85rem;line-height:1.8">{swatches}</div>', unsafe_allow_html=True)


def crisp(image: np.ndarray, min_side: int = 160) -> np.ndarray:
    """An H x W x 3 image enlarged by a whole factor with nearest-neighbour, so 8x8 digits stay sharp
    in the browser instead of being smoothed."""
    return enlarge(image, whole_factor(image.shape[0], image.shape[1], min_side))
