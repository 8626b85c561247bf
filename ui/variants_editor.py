"""The Train form's variants beyond the loss pills: 'Add a variant' (a loss with its own hyperparameters),
removing one, their labels, and the cap of one training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

import losses
from lab.settings.errors import ConfigError
from lab.settings.experiment import factor_variants, loss_title
from lab.training.jobs import MAX_RUNS_PER_JOB
from ui.form_widgets import EXTRA_VARIANTS, draw, hparam_widget
from ui.text import plain

MAX_VARIANTS = MAX_RUNS_PER_JOB  # each variant trains at least once, and one training holds at most this many runs


VARIANT_LOSS = "variant_loss"  # the loss the "Add a variant" box edits; its inputs are keyed variant.<loss>.<name>


def _add_variant(loss: str, pills: int) -> None:
    # a callback reading the inputs' session values: a value typed just before the click is already there
    if pills + len(st.session_state.get(EXTRA_VARIANTS, [])) >= MAX_VARIANTS:
        return  # the button is disabled at the cap; a click sent before it was is refused here
    values = {
        spec.name: hparam_widget(loss, spec, prefix="variant").read(st.session_state[f"variant.{loss}.{spec.name}"])
        for spec in losses.info(loss).hparams
    }
    st.session_state[EXTRA_VARIANTS] = [*st.session_state.get(EXTRA_VARIANTS, []), (loss, values)]


def _remove_variant(index: int) -> None:
    extra = list(st.session_state.get(EXTRA_VARIANTS, []))
    if index < len(extra):
        del extra[index]
    st.session_state[EXTRA_VARIANTS] = extra


def variant_labels(entries: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """The label each variant will have (:func:`lab.settings.experiment.factor_variants`), or its loss's title while
    a value is invalid."""
    try:
        variants, _ = factor_variants(entries)
    except ConfigError:
        return [loss_title(loss) for loss, _ in entries]
    return [variant.display_label() for variant in variants]


def variants_editor(pills: Sequence[str], hparams: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The added variants, each with its label and a Remove button, and the box that adds one."""
    extra = list(st.session_state[EXTRA_VARIANTS])
    labels = variant_labels([(loss, hparams.get(loss, {})) for loss in pills] + extra)[len(pills) :]
    for index, label in enumerate(labels):
        name_col, remove_col = st.columns([4, 1], vertical_alignment="center")
        name_col.markdown(f":material/call_split: **{plain(label)}**")
        remove_col.button(
            "Remove", key=f"remove_variant_{index}", on_click=_remove_variant, args=(index,), icon=":material/close:"
        )
    tunable = [name for name in losses.names() if losses.info(name).hparams]
    with st.expander("Add a variant: a loss again with other settings", icon=":material/add:"):
        loss = st.selectbox("Loss", tunable, format_func=loss_title, key=VARIANT_LOSS)
        st.caption(
            "Each variant is labelled by the settings that set it apart from the other variants of its loss "
            "(e.g. L-Softmax m=4), and Compare can plot a figure against a setting they sweep."
        )
        for spec in losses.info(loss).hparams:
            draw(hparam_widget(loss, spec, prefix="variant"))
        full = len(pills) + len(extra) >= MAX_VARIANTS
        st.button(
            "Add this variant",
            key="add_variant",
            on_click=_add_variant,
            args=(loss, len(pills)),
            icon=":material/add:",
            disabled=full,
        )
        if full:
            st.caption(f":orange[{variants_cap_text()}]")
    return extra


def variants_cap_text() -> str:
    """Why no variant can be added now, and what to do."""
    return (
        f"{MAX_VARIANTS} variants are the most one training holds (each trains once per seed, and a training "
        f"holds at most {MAX_RUNS_PER_JOB} runs): remove a variant or a loss to add another."
    )
