"""Live view of a training job: queue position, a progress bar per loss, curves, feature preview.

Drawn by two fragments while the job is queued or running: the progress bars every second, the
plotly charts every three seconds (with the browser on the same two cores, redrawing the charts
every second made the default experiment 5-20% slower to train; ``bench/app_latency.py`` times
Start-to-done in a real browser). The job itself trains on a thread owned by the app's
:class:`~lab.jobs.JobManager`, so page switches, reruns and refreshes never touch it; the fragments
only read its snapshot.
"""

from __future__ import annotations

import streamlit as st

from lab import datasets, figures
from lab.experiment import variant_label
from lab.jobs import JobManager, TrainingJob
from lab.trainer import Progress
from ui import session
from ui.text import plain

PROGRESS_SECONDS = 1.0  # progress bars and the queue position
CHARTS_SECONDS = 3.0  # the plotly curves and previews, which cost the server and the browser far more


def _class_names(job: TrainingJob) -> tuple[str, ...]:
    return datasets.info(job.configs[0].dataset).class_names


def _progress_text(progress: Progress | None) -> str:
    if progress is None:
        return "waiting"
    if progress.status is not None:
        return plain(f"{progress.status} {progress.message}".strip())
    accuracy = f" · test accuracy {progress.metrics['test_acc']:.1%}" if progress.metrics else ""
    return f"epoch {progress.epoch} of {progress.epochs}{accuracy}"


def _draw_progress(manager: JobManager, job_id: str, owner: str) -> None:
    """Queue position, Stop, one progress bar per loss and, once done, the outcome (cheap: every second)."""
    job = manager.get(job_id, owner)
    if job is None:  # no longer kept: the server drops finished jobs after a while
        return
    phase = manager.state(job_id)
    latest = job.snapshot().latest
    if latest and session.pending_experiment() == job.configs[0].experiment:
        st.rerun()  # its first run reports progress, so its folder exists: a full rerun lets the sidebar show it
    if phase == "queued":
        st.info(
            f"Waiting for a free training slot: position {manager.queue_position(job_id)} in the queue "
            f"({manager.max_running} training at a time on this machine).",
            icon=":material/hourglass_top:",
        )
    if job.error:
        st.error(plain(job.error), icon=":material/error:")
    header, stop_col = st.columns([5, 1])
    header.subheader("Training" if phase != "done" else "Last training")
    if phase != "done":
        stop_col.button(
            "Stop",
            icon=":material/stop:",
            key=f"stop-{job_id}",
            on_click=manager.stop,
            args=(job_id, owner),
            help="Stop after the current step; finished runs are kept.",
        )
    for index, config in enumerate(job.configs):
        progress = latest.get(index)
        fraction = progress.fraction if progress is not None else 0.0
        st.progress(fraction, text=f"**{plain(variant_label(config))}**: {_progress_text(progress)}")
    if phase == "done":
        states = [r.state for r in job.records]
        finished = states.count("finished")
        others = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states) - {"finished"}))
        message = f"Done: {finished} of {len(job.configs)} runs finished" + (f"; {others}" if others else "") + "."
        if finished == len(job.configs):
            st.success(message + " Open **Feature space** to compare them.", icon=":material/check_circle:")
        else:
            st.warning(message + " The sidebar says what happened to each run.", icon=":material/warning:")
        if session.first_view_when_done(job_id):
            st.rerun()  # a full rerun, so the sidebar lists the new runs and the charts draw their last epoch


def _run_names(job: TrainingJob) -> dict[int, str]:
    """Each run's name in the curves' legend and the previews' titles: its variant's label, and its seed when
    the experiment trains several (one name per run, so no two runs share a curve)."""
    several_seeds = len({config.seed for config in job.configs}) > 1
    return {
        index: variant_label(config) + (f" · seed {config.seed}" if several_seeds else "")
        for index, config in enumerate(job.configs)
    }


def _draw_charts(manager: JobManager, job_id: str, owner: str) -> None:
    """Training curves and the live feature preview (plotly figures: every few seconds)."""
    job = manager.get(job_id, owner)
    if job is None:
        return
    snapshot = job.snapshot()
    names = _run_names(job)
    histories = {names[i]: snapshot.history.get(i, []) for i in names}
    if any(histories.values()):
        left, right = st.columns(2)
        left.plotly_chart(figures.training_curves(histories, "train_loss", "training loss"), key=f"loss-{job_id}")
        right.plotly_chart(
            figures.training_curves(histories, "test_acc", "test accuracy", percent=True), key=f"acc-{job_id}"
        )
    feat_dim = job.configs[0].feat_dim
    previews = snapshot.previews
    if feat_dim in (2, 3) and previews:
        st.caption("Test features on the unit circle/sphere after the latest epoch (a fixed subset of the test set).")
        columns = st.columns(min(len(job.configs), 5))
        for i, progress in sorted(previews.items()):
            fig = figures.feature_scatter(
                progress.snapshot.numpy(),
                progress.snapshot_labels.numpy(),
                _class_names(job),
                title=f"{names[i]} · epoch {progress.epoch}",
                height=260,
                legend=False,
            )
            columns[i % len(columns)].plotly_chart(fig, key=f"preview-{job_id}-{i}")


def show(manager: JobManager, job_id: str, owner: str) -> None:
    running = manager.state(job_id) != "done"
    st.fragment(run_every=PROGRESS_SECONDS if running else None)(_draw_progress)(manager, job_id, owner)
    st.fragment(run_every=CHARTS_SECONDS if running else None)(_draw_charts)(manager, job_id, owner)
