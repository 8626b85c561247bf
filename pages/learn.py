"""Learn: each loss's formula, what it asks of the features, its paper and its settings, for students."""

from __future__ import annotations

import streamlit as st

import losses
import ui
from lab.analysis.seed_stats import SEED_METRICS
from ui import playground

ui.run_inside_app()


def value_text(value: object) -> str:
    """A hyperparameter value as the CLI and the Train form take it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


st.title("Learn")
st.caption(
    "What each loss asks of the features: its formula, a short explanation of what to look for on the other "
    "pages, its paper and its settings. Below them, a playground draws what a loss asks of one feature anywhere "
    "in the plane."
)

for info in losses.available():
    cls = losses.get(info.name)
    with st.expander(f"**{cls.title}**: {info.summary}", expanded=info.name == "softmax"):
        st.latex(cls.formula_latex)
        if losses.source(info.name):
            st.caption(f"Your own loss, loaded from `{losses.source(info.name)}` when the server started.")
        if cls.lesson:
            st.markdown(cls.lesson)
        if cls.expected:
            promises = "; ".join(
                f"{SEED_METRICS[e.figure].title} {e.direction} than softmax ({e.because})" for e in cls.expected
            )
            st.markdown(
                f"**What to check.** {promises}. Feature space checks these on every experiment that has a softmax "
                "variant, over its seeds, and says when the experiment does not show them."
            )
        if cls.paper:
            st.markdown(f"**Paper.** {cls.paper}")
        if info.hparams:
            st.markdown(f"**Settings** (name in the CLI: `--hparam {info.name}.NAME=VALUE`)")
            st.table(
                [
                    {
                        "setting": spec.name,
                        "default": value_text(spec.default),
                        "allowed": spec.range_text(),
                        "meaning": spec.help,
                    }
                    for spec in info.hparams
                ]
            )

st.divider()
playground.draw()
