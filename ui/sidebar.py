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
    pending = state.pending_experiment()
    if pending in groups:  # a just-started experiment whose first run folder now exists
        st.session_state.pop(state.PENDING_EXPERIMENT)
        st.query_params["exp"] = pending
        pending = None
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
    if pending is None:  # while one is pending the URL keeps naming it, so a refresh still finds it
        st.query_params["exp"] = choice
    return choice


def _delete(experiment: str, owner: str) -> None:
    deleted = state.run_store().delete_experiment(experiment, owner)
    st.session_state["experiment"] = None
    st.query_params.pop("exp", None)
    st.toast(f"Deleted {deleted} runs.", icon=":material/delete:")


def _manage(experiment: str, records: list) -> None:
    store = state.run_store()
    owner = state.owner_token()
    st.caption(f"Runs folder `{store.root}`: {store.size_bytes() / 1e6:.1f} MB")
    if not any(r.owner == owner for r in records):
        st.caption("This experiment is shared (the example or the command line): it can be deleted on disk only.")
    elif any(r.state == "running" for r in records):
        st.caption("Stop the training before deleting this experiment.")
    else:
        with st.popover("Delete this experiment", icon=":material/delete:"):
            st.markdown(f"Delete its {len(records)} runs from disk? This cannot be undone.")
            st.button("Delete", type="primary", key="confirm_delete", on_click=_delete, args=(experiment, owner))


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
        st.divider()
        _manage(experiment, records)
