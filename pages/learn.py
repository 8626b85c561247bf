"""Learn: each loss's formula, what it does, its paper, and what to look for in the plots."""

from __future__ import annotations

import inspect
import sys

import streamlit as st

import losses
import ui

ui.run_inside_app()

st.title("Learn")
st.caption(
    "What each loss asks of the features, in its own words: the formula, the paper, and what to look for "
    "on the other pages."
)

for info in losses.available():
    cls = losses.get(info.name)
    with st.expander(f"**{info.name}**: {info.summary}", expanded=info.name == "softmax"):
        st.markdown(f"**Paper.** {cls.paper}")
        st.code(inspect.cleandoc(sys.modules[cls.__module__].__doc__ or ""), language=None, wrap_lines=True)
        if info.hparams:
            st.markdown("**Hyperparameters** (defaults as shipped)")
            st.table(
                [
                    {"name": s.name, "default": s.default, "allowed": s.range_text(), "meaning": s.help}
                    for s in info.hparams
                ]
            )
