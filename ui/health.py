"""The selected experiment's runs, checked before a page draws them: a broken run gets one error line and
is left out, a training experiment says how far it has got (its finished runs show as they land), and a
page with nothing to show says where to go instead."""

from __future__ import annotations

import streamlit as st

from lab.runs.record import RunRecord
from lab.runs.store import RunStoreError
from ui import loaders, session, titles
from ui.text import plain

REFRESH_SECONDS = 3.0  # while the experiment trains, how often a page looks for newly finished runs
TRAIN_PAGE = "pages/train.py"


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
        except (RunStoreError, KeyError, ValueError, TypeError) as err:
            st.error(
                f"**{plain(titles.loss_label(record))}** cannot be shown: {plain(err)}. The other runs are "
                f"unaffected; delete or retrain this one.",
                icon=":material/broken_image:",
            )
            continue
        usable.append((record, arrays))
    return usable


def training_progress(records: list[RunRecord]) -> str | None:
    """``training: run k of n, epoch e of E`` (``runs k-l`` while several train together) while the selected
    experiment trains, else None. From this browser's own job when it trains the experiment (it knows n),
    else from the run files."""
    experiment = session.selected_experiment()
    manager = session.job_manager()
    owner = session.owner()
    job_id = manager.active_job(owner)
    job = manager.get(job_id, owner) if job_id else None
    if job is not None and job.experiment == experiment:
        if manager.state(job_id) == "queued":
            return f"queued: position {manager.queue_position(job_id)} in the training queue"
        latest = job.snapshot().latest
        # runs that train together (fused) report at once: name them all
        training = sorted(i for i, p in latest.items() if p.status is None) or [max(latest, default=0)]
        first, last = training[0] + 1, training[-1] + 1
        runs = f"run {first}" if first == last else f"runs {first}-{last}"
        progress = latest.get(training[0])
        epoch = progress.epoch if progress is not None else 0
        return f"training: {runs} of {len(job.configs)}, epoch {epoch} of {job.configs[training[0]].epochs}"
    running = [(number, r) for number, r in enumerate(records, 1) if r.state == "running"]
    if not running:
        return None
    (first, record), last = running[0], running[-1][0]
    runs = f"run {first}" if first == last else f"runs {first}-{last}"
    epochs = f" of {record.config.epochs}" if record.config is not None else ""
    return f"training: {runs}, epoch {len(record.metrics)}{epochs}"


def _finished_count() -> int:
    return sum(1 for record in session.selected_runs(viewable_only=False) if record.state != "running")


def _rerun_when_runs_land(ended: int) -> None:
    if _finished_count() != ended:
        st.rerun(scope="app")


def _training_note(progress: str, records: list[RunRecord]) -> None:
    st.info(
        f"This experiment is {progress}. Finished runs appear here as they land.",
        icon=":material/model_training:",
    )
    st.page_link(TRAIN_PAGE, label="Follow the training on the Train page", icon=":material/arrow_forward:")
    ended = sum(1 for record in records if record.state != "running")
    st.fragment(run_every=REFRESH_SECONDS)(_rerun_when_runs_land)(ended)


def loaded_runs_or_stop() -> list[tuple[RunRecord, loaders.RunArrays]]:
    """:func:`loaded_runs`; while the experiment trains, a note saying how far; when there is nothing to
    show, a note saying where to go instead and the end of the page."""
    records = session.selected_runs(viewable_only=False)
    progress = training_progress(records)
    if progress is not None:
        _training_note(progress, records)
    loaded = loaded_runs()
    if loaded:
        return loaded
    if progress is None:
        if session.selected_experiment() is None:
            message = "Choose an experiment in the sidebar, or train one on the **Train** page."
        else:
            message = (
                "This experiment has no finished runs to show yet. Pick another experiment in the sidebar, or "
                "train one on the **Train** page."
            )
        st.info(message, icon=":material/info:")
    st.stop()
