"""Each loss's lesson checked on the selected experiment (:mod:`lab.analysis.lessons`), drawn under Feature space's
panels: what the Learn page promises, the numbers over the experiment's seeds and the verdict."""

from __future__ import annotations

import streamlit as st

from lab.analysis.lessons import NOT_DISTINGUISHABLE, ONE_SEED, OPPOSITE, SHOWN, check_lessons
from lab.runs.record import RunRecord
from ui import variant_summary
from ui.text import plain

ICONS = {
    SHOWN: ":material/check_circle:",
    OPPOSITE: ":material/cancel:",
    NOT_DISTINGUISHABLE: ":material/drag_handle:",
    ONE_SEED: ":material/help:",
}


def draw(records: list[RunRecord]) -> None:
    """An expander with one line per promise of every variant's lesson, over all of the experiment's seeds
    (not only the seed the panels show); nothing without a softmax variant to compare with."""
    checks = check_lessons(variant_summary.summaries(records))
    if not checks:
        return
    seeds = max(len(check.seeds) for check in checks)
    with st.expander(f"Does each loss do what the Learn page says? Checked on this experiment ({seeds} seeds)"):
        st.caption(
            "Each promise is a figure of the test features against the softmax variant, seed by seed: the paired "
            "difference over the seeds both finished, a paired t-test, Holm-adjusted over one loss's promises, "
            'significant at 5%. "Not distinguishable" means this experiment cannot tell, not that the lesson is '
            'wrong; "the opposite" means it shows the reverse.'
        )
        for check in checks:
            st.markdown(f"{ICONS[check.verdict]} **{plain(check.variant)}**: {plain(check.sentence())}")
