"""Presentation mode, for a projector: larger type and charts, one loss per screen, the sidebar folded.

Apart from :mod:`ui.layout` and importing only Streamlit, so that ``app.py`` can set the page up and draw
its skeleton before the imports that bring in torch and plotly. Its two keys are listed with every other
in :mod:`ui.session`.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

PRESENTATION = "presentation"  # st.session_state: the switch
URL_PRESENTATION = "present"  # st.query_params: ?present=1 opens a session in presentation mode
SCALE = 1.5  # how much larger charts are drawn
CSS = """
<style>
  html { font-size: 21px; }
  [data-testid="stMainBlockContainer"] { padding-left: 2rem; padding-right: 2rem; max-width: 100%; }
  [data-testid="stCaptionContainer"] { font-size: 0.95rem; }
</style>
"""


def presenting() -> bool:
    """Whether presentation mode is on (the switch, or ``?present=1`` on the first view of a session)."""
    if PRESENTATION not in st.session_state:
        st.session_state[PRESENTATION] = st.query_params.get(URL_PRESENTATION) == "1"
    return bool(st.session_state[PRESENTATION])


def scale() -> float:
    """How much larger charts are drawn: :data:`SCALE` in presentation mode, else 1."""
    return SCALE if presenting() else 1.0


def _changed() -> None:
    if st.session_state[PRESENTATION]:
        st.query_params[URL_PRESENTATION] = "1"
    else:
        st.query_params.pop(URL_PRESENTATION, None)


def switch(where: Any) -> None:
    """The switch in ``where`` (``app.py`` puts it top right of every page); in presentation mode, larger
    text too."""
    presenting()
    where.toggle(
        "Presentation",
        key=PRESENTATION,
        on_change=_changed,
        help="For a projector: larger text, markers and charts, one loss at a time, the sidebar folded away. "
        "Add ?present=1 to a link to open it this way.",
    )
    if presenting():
        st.html(CSS)
