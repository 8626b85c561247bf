"""The shared sidebar: choose the experiment (kept in the URL as ``?exp=``), see its runs, share a
read-only link to it and, for this browser's own experiments, delete them."""

from __future__ import annotations

from collections import Counter

import streamlit as st

from lab.analysis import wording
from lab.runs import ending
from lab.runs.contents import RunStoreError
from lab.runs.record import ELSEWHERE, RunRecord
from lab.shown_text import count_text
from ui import seeds, session, titles
from ui.text import plain

STATUS_BADGE = {
    "finished": ":green[finished]",
    "stopped": ":orange[stopped]",
    "running": ":blue[training]",
    "diverged": ":red[diverged]",
    "failed": ":red[failed]",
    "interrupted": ":orange[interrupted]",
    "elsewhere": ":orange[running elsewhere or interrupted]",
}


def experiment_labels(groups: dict[str, list[RunRecord]]) -> dict[str, str]:
    """A label per experiment, no two alike (picking a label must open its own experiment): where
    labels would repeat, each names its experiment too."""
    labels = {experiment: _label(experiment, records) for experiment, records in groups.items()}
    counts = Counter(labels.values())
    labels = {exp: f"{label} · {exp}" if counts[label] > 1 else label for exp, label in labels.items()}
    seen: Counter[str] = Counter()
    for experiment, label in labels.items():  # a planted name could still repeat a label: number it
        seen[label] += 1
        if seen[label] > 1:
            labels[experiment] = f"{label} #{seen[label]}"
    return labels


def _label(experiment: str, records: list[RunRecord]) -> str:
    label = titles.experiment_label(experiment, records)
    if session.linked(records):
        label += " · shared with you"
    return " ".join(label.split())  # no line breaks or tabs from a planted name


def _choose_experiment(groups: dict[str, list[RunRecord]]) -> str | None:
    if not groups:
        session.select_experiment(None)
        return None
    # keyed and given its value through the session: an ``index`` argument would be part of the widget's
    # identity, so the widget would be replaced after each pick and the next pick would be lost
    st.session_state[session.EXPERIMENT_CHOICE] = session.preselected_experiment(groups)
    labels = experiment_labels(groups)
    choice = st.selectbox(
        "Experiment",
        list(groups),
        format_func=labels.__getitem__,
        key=session.EXPERIMENT_CHOICE,
        on_change=_picked,
        placeholder="Choose an experiment",
        help="A group of runs trained together on the same data and seed, one per loss.",
    )
    session.select_experiment(choice)
    return choice


def _picked() -> None:
    session.select_experiment(st.session_state[session.EXPERIMENT_CHOICE])


def _delete(experiment: str) -> None:
    try:
        deleted = session.run_store().delete_experiment(experiment, session.owner())
    except RunStoreError as err:
        st.toast(f"Nothing was deleted: {plain(err)}", icon=":material/error:")
        return
    session.forget_experiment()
    st.toast(f"Deleted {count_text(deleted, 'run')}.", icon=":material/delete:")


def _end_elsewhere(records: list[RunRecord]) -> None:
    """End this browser's runs of ``records`` that another machine left training (:mod:`lab.runs.ending`)."""
    me = session.owner()
    ended = 0
    for record in records:
        if record.state == ELSEWHERE and record.owner == me:
            try:
                ending.end_run(session.run_store(), record.run_id, "their owner, in the app")
            except RunStoreError as err:
                st.toast(f"Run {plain(record.run_id)} was not ended: {plain(err)}", icon=":material/error:")
                continue
            ended += 1
    if ended:
        st.toast(f"Ended {ended} {'run' if ended == 1 else 'runs'}.", icon=":material/stop:")


def _share(experiment: str) -> None:
    with st.popover("Share a read-only link", icon=":material/share:", width="stretch"):
        st.caption(
            "Anyone with this link can look at this experiment. Only this browser can stop its training or "
            "delete it: the link does not carry that right."
        )
        st.code(session.share_link(experiment), language=None, wrap_lines=True)


def _manage(experiment: str, records: list[RunRecord]) -> None:
    store = session.run_store()
    problem = session.runs_problem()
    if problem:
        st.caption(f":orange[{plain(problem[:1].upper() + problem[1:])}.]")
    else:
        st.caption(f"Runs folder {plain(store.root)}: {store.size_bytes() / 1e6:.1f} MB")
    if session.linked(records):
        st.caption("Opened from a link: another browser trained it, so you can look but not stop or delete it.")
    elif not session.owns(records):
        st.caption(
            "This experiment is shared (the example or the command line): only the server's operator can delete "
            "it (`python -m lab delete`)."
        )
    elif problem:
        st.caption("The runs folder cannot be written, so nothing can be deleted.")
    elif any(r.state == "running" for r in records):
        st.caption("Stop the training before deleting this experiment.")
    elif any(r.state == ELSEWHERE for r in records):
        st.caption(
            "Another machine was training runs of this experiment, and this one cannot tell whether it still "
            "is. If it no longer is, end them here; then the experiment can be deleted."
        )
        st.button("End these runs", key="end_elsewhere", on_click=_end_elsewhere, args=(records,))
    else:
        with st.popover("Delete this experiment", icon=":material/delete:", width="stretch"):
            st.markdown(f"Delete its {len(records)} runs from disk? This cannot be undone.")
            st.button("Delete", type="primary", key="confirm_delete", on_click=_delete, args=(experiment,))


def _run_line(record: RunRecord, several_seeds: bool) -> None:
    accuracy = wording.test_accuracy(record)  # not a running run's last subset figure
    accuracy_text = f" · {wording.percent_text(accuracy)}" if accuracy is not None else ""
    badge = STATUS_BADGE.get(record.state, plain(record.state))
    seed = f" · seed {record.config.seed}" if several_seeds and record.config is not None else ""
    st.markdown(f"**{plain(titles.loss_label(record))}**{seed} {badge}{accuracy_text}")
    if record.error:
        st.caption(f":red[{plain(record.error)}]")
    elif record.state in ("diverged", "failed", "interrupted", "elsewhere"):
        st.caption(plain(record.message))


def draw() -> None:
    with st.sidebar:
        st.markdown("### LossLens")
        st.caption("How a classification loss shapes what a CNN learns.")
        session.keep_identity()
        groups = session.experiments()
        experiment = _choose_experiment(groups)
        if experiment is None:
            if session.listing_problem():
                st.error(plain(session.listing_problem()), icon=":material/error:")
            elif groups:
                st.info("Choose an experiment above, or train one on the **Train** page.")
            else:
                st.info("No experiments yet. Train one on the **Train** page.")
            return
        records = groups[experiment]
        config = next((r.config for r in records if r.config is not None), None)
        trained_seeds = seeds.seeds_of(records)
        if config is not None:
            seed_text = "seed" if len(trained_seeds) == 1 else "seeds"
            st.caption(
                f"{config.dataset} · model `{config.model}` · {config.feat_dim}-D features · "
                f"{config.epochs} epochs · {seed_text} {', '.join(map(str, trained_seeds))}"
            )
        for record in records:
            _run_line(record, len(trained_seeds) > 1)
        st.divider()
        _share(experiment)
        _manage(experiment, records)
