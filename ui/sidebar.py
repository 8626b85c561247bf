"""The shared sidebar: choose the experiment (kept in the URL as ``?exp=``) and see its runs."""

from __future__ import annotations

import streamlit as st

from ui import state

STATUS_BADGE = {
    "finished": ":green[finished]",
    "stopped": ":orange[stopped]",
    "running": ":blue[training]",
    "diverged": ":red[diverged]",
    "failed": ":red[failed]",
    "interrupted": ":orange[interrupted]",
}


def _choose_experiment(groups: dict) -> str | None:
    if not groups:
        st.session_state["experiment"] = None
        return None
    ids = list(groups)
    wanted = st.query_params.get("exp")
    if wanted not in groups:
        wanted = st.session_state.get("experiment") if st.session_state.get("experiment") in groups else ids[0]
    choice = st.selectbox(
        "Experiment",
        ids,
        index=ids.index(wanted),
        format_func=lambda exp: state.experiment_label(exp, groups[exp]),
        help="A group of runs trained together on the same data and seed, one per loss.",
    )
    st.session_state["experiment"] = choice
    st.query_params["exp"] = choice
    return choice


def draw() -> None:
    with st.sidebar:
        st.markdown("### LossLens")
        st.caption("How a classification loss shapes what a CNN learns.")
        state.owner_token()
        groups = state.experiments()
        experiment = _choose_experiment(groups)
        if experiment is None:
            st.info("No experiments yet. Train one on the **Train** page.")
            return
        records = groups[experiment]
        config = next((r.config for r in records if r.config is not None), None)
        if config is not None:
            st.caption(
                f"{config.dataset} · model `{config.model}` · {config.feat_dim}-D features · "
                f"{config.epochs} epochs · seed {config.seed}"
            )
        for record in records:
            accuracy = record.status.get("test_acc")
            accuracy_text = f" · {accuracy:.1%}" if isinstance(accuracy, float) else ""
            name = record.config.loss if record.config else record.run_id
            st.markdown(f"**{name}** {STATUS_BADGE.get(record.state, record.state)}{accuracy_text}")
            if record.error:
                st.caption(f":red[{record.error}]")
            elif record.state in ("diverged", "failed", "interrupted"):
                st.caption(record.status.get("message", ""))
