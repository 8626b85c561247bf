"""The selected experiment's runs, checked before a page draws them: a broken run gets one error line and
is left out, and a page with nothing to show says where to go instead."""

from __future__ import annotations

import streamlit as st

from lab.runstore import RunRecord, RunStoreError
from ui import loaders, session, titles


def loaded_runs() -> list[tuple[RunRecord, loaders.RunArrays]]:
    """The selected experiment's usable runs with their arrays. A run whose files are missing or
    corrupt gets one clear error line here and is left out; the other runs still show."""
    usable = []
    for record in session.selected_runs(viewable_only=False):
        if record.state not in session.VIEWABLE:
            continue
        try:
            if record.error:
                raise RunStoreError(record.error)
            arrays = loaders.run_arrays(record)
            problem = loaders.weights_problem(record)
            if problem:
                raise RunStoreError(problem)
        except (RunStoreError, KeyError, ValueError) as err:
            st.error(
                f"**{titles.loss_label(record)}** cannot be shown: {err}. The other runs are unaffected; delete or "
                f"retrain this one.",
                icon=":material/broken_image:",
            )
            continue
        usable.append((record, arrays))
    return usable


def loaded_runs_or_stop() -> list[tuple[RunRecord, loaders.RunArrays]]:
    """:func:`loaded_runs`; when there are none, a note saying where to go instead and the end of the page."""
    loaded = loaded_runs()
    if not loaded:
        st.info(
            "This experiment has no finished runs to show yet. Pick another experiment in the sidebar, or train "
            "one on the **Train** page.",
            icon=":material/info:",
        )
        st.stop()
    return loaded
