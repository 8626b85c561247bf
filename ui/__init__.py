"""Streamlit glue shared by ``app.py`` and the pages (no analysis or training logic lives here)."""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def run_inside_app() -> None:
    """Make sure this page runs inside ``app.py``'s navigation.

    Because the pages live in ``pages/``, Streamlit's legacy multipage mode runs a page file on its
    own when the first request after a server start is a page's URL (a shared link, a refresh after a
    restart): no sidebar, no page setup. ``app.py``'s ``st.navigation`` switches that mode off, so
    switch it off here too and rerun; the rerun goes through ``app.py`` to the same URL.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
