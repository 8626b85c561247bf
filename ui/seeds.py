"""One seed at a time: the pages that give every run its own panel (Feature space, Grad-CAM) show the runs
of one training seed when the experiment trained its variants with several, so each variant appears once
and keeps its label as the panel's title. The seed chosen is kept while the user switches pages."""

from __future__ import annotations

from typing import TypeVar

import streamlit as st

from lab.runs.record import RunRecord

SEED = "training_seed"  # the seed shown, kept across pages (a widget's own key is dropped on a page switch)
SEED_WIDGET = "training_seed_choice"

Item = TypeVar("Item", bound=tuple)


def seeds_of(records: list[RunRecord]) -> list[int]:
    """The experiment's training seeds, in order (a run without a readable config has none)."""
    return sorted({record.config.seed for record in records if record.config is not None})


def _picked() -> None:
    st.session_state[SEED] = st.session_state[SEED_WIDGET]


def one_seed(loaded: list[Item]) -> list[Item]:
    """``loaded`` (pairs of a run record and what was loaded for it) narrowed to one seed, chosen above the
    page's panels when there are several; unchanged when the experiment has one seed."""
    seeds = seeds_of([item[0] for item in loaded])
    if len(seeds) < 2:
        return loaded
    if st.session_state.get(SEED) not in seeds:
        st.session_state[SEED] = seeds[0]
    st.session_state[SEED_WIDGET] = st.session_state[SEED]
    chosen = st.segmented_control(
        "Training seed",
        seeds,
        key=SEED_WIDGET,
        on_change=_picked,
        format_func=lambda seed: f"seed {seed}",
        help="Each variant was trained once per seed. These panels show one seed at a time; Compare shows every "
        "seed with each variant's mean and 95% confidence interval.",
    )
    if chosen is None:  # a click on the selected segment clears it: keep showing that seed
        chosen = st.session_state[SEED]
    return [item for item in loaded if item[0].config is not None and item[0].config.seed == chosen]
