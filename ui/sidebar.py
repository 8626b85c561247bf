"""The shared sidebar: choose the experiment (kept in the URL as ``?exp=``) and see its runs."""

from __future__ import annotations

import streamlit as st

from lab.runstore import RunRecord
from ui import session, titles

STATUS_BADGE = {
    "finished": ":green[finished]",
    "stopped": ":orange[stopped]",
    "running": ":blue[training]",
    "diverged": ":red[diverged]",
    "failed": ":red[failed]",
    "interrupted": ":orange[interrupted]",
}


def _choose_experiment(groups: dict[str, list[RunRecord]]) -> str | None:
    wanted = session.preselected_experiment(groups)
    if wanted is None:
        return None
    ids = list(groups)
    choice = st.selectbox(
        "Experiment",
        ids,
        index=ids.index(wanted),
        format_func=lambda exp: titles.experiment_label(exp, groups[exp]),
        help="A group of runs trained together on the same data and seed, one per loss.",
    )
    session.select_experiment(choice)
    return choice


def _delete(experiment: str, owner: str) -> None:
    deleted = session.run_store().delete_experiment(experiment, owner)
    session.forget_experiment()
    st.toast(f"Deleted {deleted} runs.", icon=":material/delete:")


def _manage(experiment: str, records: list[RunRecord]) -> None:
    store = session.run_store()
    owner = session.owner_token()
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
        session.owner_token()
        groups = session.experiments()
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
            badge = STATUS_BADGE.get(record.state, record.state)
            st.markdown(f"**{titles.loss_label(record)}** {badge}{accuracy_text}")
            if record.error:
                st.caption(f":red[{record.error}]")
            elif record.state in ("diverged", "failed", "interrupted"):
                st.caption(record.status.get("message", ""))
        st.divider()
        _manage(experiment, records)
