"""Live view of a training: queue position, a progress bar per run, curves, feature preview.

Two sources, one drawing. This browser's own job (:func:`show`) is read from the job's snapshot, with
Stop; another browser's or the command line's training of the selected experiment (:func:`show_followed`,
a shared link's viewer) is read from its run files after each epoch, without Stop. Every run is named by
its variant and, when the experiment trains several, its seed.

The own job is drawn by two fragments while it runs: the progress bars every second, the plotly charts every
three seconds (with the browser on the same cores, redrawing the charts every second slowed the training;
``bench/app_latency.py`` times Start-to-done in a real browser). A
followed training is one fragment every three seconds: its files change once an epoch. The job itself
trains on a thread owned by the app's :class:`~lab.training.jobs.JobManager`, so page switches, reruns and
refreshes never touch it; the fragments only read its snapshot or its files.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import streamlit as st

from lab import datasets, figures
from lab.analysis import wording
from lab.runs.record import RunRecord
from lab.settings.config import RunConfig
from lab.settings.experiment import variant_label
from lab.training.jobs import JobManager, TrainingJob
from lab.training.loop import TrainingProgress
from ui import session
from ui.text import plain

PROGRESS_SECONDS = 1.0  # progress bars and the queue position
CHARTS_SECONDS = 3.0  # the plotly curves and previews, which cost the server and the browser far more
PREVIEW_COLUMNS = 5  # feature previews side by side
PREVIEW_HEIGHT = 190  # about a fifth of the page at 1440 pixels: a taller chart only adds space around its circle
CURVES_HEIGHT = 280  # plus a line of legend per two runs beyond the first two


@dataclasses.dataclass(frozen=True)
class Preview:
    """A run's test-subset features after its latest epoch, for the unit circle or sphere."""

    features: np.ndarray
    labels: np.ndarray
    epoch: int


@dataclasses.dataclass(frozen=True)
class LiveRun:
    """One run as the live view draws it: its name, how much of it is done (0 to 1) and in words, its
    metrics per epoch so far and its latest feature preview (None when there is none)."""

    config: RunConfig
    name: str
    fraction: float
    text: str
    history: list[dict[str, Any]]
    preview: Preview | None = None


def run_names(configs: Sequence[RunConfig]) -> list[str]:
    """Each run's name: its variant's label, and its seed when the runs have several (one name per run, so
    no two progress bars or curves read alike)."""
    several_seeds = len({config.seed for config in configs}) > 1
    return [variant_label(config) + (f" · seed {config.seed}" if several_seeds else "") for config in configs]


def _accuracy_name(metrics: dict[str, Any]) -> str:
    """What an epoch's accuracy was measured on: the evaluation subset, named by its size."""
    images = metrics.get("eval_images")
    counted = isinstance(images, int) and not isinstance(images, bool)
    return f"accuracy on {images:,} test images" if counted else "accuracy on a test subset"


def _epoch_accuracy(metrics: dict[str, Any] | None) -> str:
    accuracy = (metrics or {}).get("test_acc")  # a line of a run file may lack it
    if accuracy is None:
        return ""
    return f" · {_accuracy_name(metrics)} {wording.percent_text(accuracy)}"


# --- this browser's job -------------------------------------------------------------------------------


def _progress_text(progress: TrainingProgress | None) -> str:
    if progress is None:
        return "waiting"
    if progress.status is not None:
        return plain(f"{progress.status}: {progress.message}" if progress.message else progress.status)
    return f"epoch {progress.epoch} of {progress.epochs}{_epoch_accuracy(progress.metrics)}"


def job_runs(job: TrainingJob) -> list[LiveRun]:
    """The job's runs from its snapshot (the progress within an epoch included)."""
    snapshot = job.snapshot()
    runs = []
    for index, (config, name) in enumerate(zip(job.configs, run_names(job.configs), strict=True)):
        progress = snapshot.latest.get(index)
        shown = snapshot.previews.get(index)
        preview = None
        if shown is not None and shown.snapshot is not None and shown.snapshot_labels is not None:
            preview = Preview(shown.snapshot.numpy(), shown.snapshot_labels.numpy(), shown.epoch)
        fraction = progress.fraction if progress is not None else 0.0
        runs.append(LiveRun(config, name, fraction, _progress_text(progress), snapshot.history.get(index, []), preview))
    return runs


def _draw_progress(manager: JobManager, job_id: str, owner: str) -> None:
    """Queue position, Stop, one progress bar per run and, once done, the outcome (cheap: every second)."""
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
    _progress_bars(job_runs(job))
    if phase == "done":
        states = [r.state for r in job.records]
        _outcome(states, len(job.configs))
        if session.first_view_when_done(job_id):
            st.rerun()  # a full rerun, so the sidebar lists the new runs and the charts draw their last epoch


def _draw_job_charts(manager: JobManager, job_id: str, owner: str) -> None:
    job = manager.get(job_id, owner)
    if job is not None:
        _charts(job_runs(job), datasets.info(job.configs[0].dataset).class_names, key=job_id)


def show(manager: JobManager, job_id: str, owner: str) -> None:
    """This browser's job, live, with Stop."""
    running = manager.state(job_id) != "done"
    st.fragment(run_every=PROGRESS_SECONDS if running else None)(_draw_progress)(manager, job_id, owner)
    st.fragment(run_every=CHARTS_SECONDS if running else None)(_draw_job_charts)(manager, job_id, owner)


# --- another browser's or the command line's training, from the run files ------------------------------


def _file_text(record: RunRecord, config: RunConfig) -> tuple[float, str]:
    """How much of a run its files say is done, and in words: the epochs written so far while it trains,
    else how it ended with its test accuracy (the whole test set)."""
    done = len(record.metrics)
    if record.state == "running":
        last = record.metrics[-1] if record.metrics else None
        return done / config.epochs, f"{done} of {config.epochs} epochs done{_epoch_accuracy(last)}"
    accuracy = wording.test_accuracy(record)
    ended = f" · test accuracy {wording.percent_text(accuracy)}" if accuracy is not None else ""
    detail = f" ({plain(record.message)})" if record.state not in ("finished", "stopped") and record.message else ""
    return (1.0 if record.state == "finished" else done / config.epochs), f"{record.state}{ended}{detail}"


def file_runs(records: Sequence[RunRecord]) -> list[LiveRun]:
    """The runs of ``records`` that have a config, as their files tell them (no feature preview: the
    labels of its images are in the dataset, which a viewer's server may not hold)."""
    usable = [record for record in records if record.config is not None]
    configs = [record.config for record in usable]
    runs = []
    for record, config, name in zip(usable, configs, run_names(configs), strict=True):
        fraction, text = _file_text(record, config)
        runs.append(LiveRun(config, name, min(1.0, fraction), text, list(record.metrics)))
    return runs


def _followed_records() -> list[RunRecord]:
    return session.selected_runs(viewable_only=False)


def _draw_followed(ended: int) -> None:
    """The followed training's progress bars and charts, from its run files (which change once an epoch)."""
    records = _followed_records()
    if sum(record.state != "running" for record in records) != ended:
        st.rerun(scope="app")  # a run has ended: the sidebar and the page's other parts show it too
    st.subheader("Training" if ended < len(records) else "Last training", anchor=False)
    st.caption(
        "Another browser or the command line trains this experiment: you follow it here from its run files, "
        "updated after each epoch. Only the browser that started it can stop it."
    )
    runs = file_runs(records)
    _progress_bars(runs)
    if ended == len(records):
        _outcome([record.state for record in records], len(records))
    if runs:
        _charts(runs, datasets.info(runs[0].config.dataset).class_names, key="followed")


def follows(experiment: str | None, own_experiment: str | None) -> bool:
    """Whether the Train page shows the selected ``experiment``'s training read-only: another browser or
    the command line trains it (``own_experiment`` is this browser's job's), or this session followed it
    while it trained (so its end shows too)."""
    if experiment is None or experiment == own_experiment:
        return False
    if any(record.state == "running" for record in _followed_records()):
        session.follow(experiment)
        return True
    return session.followed() == experiment


def show_followed() -> None:
    """The selected experiment's training as its run files tell it, without Stop; this browser's form stays
    its own."""
    records = _followed_records()
    ended = sum(record.state != "running" for record in records)
    st.fragment(run_every=CHARTS_SECONDS if ended < len(records) else None)(_draw_followed)(ended)


# --- drawing ------------------------------------------------------------------------------------------


def _progress_bars(runs: Sequence[LiveRun]) -> None:
    for run in runs:
        st.progress(run.fraction, text=f"**{plain(run.name)}**: {run.text}")


def _outcome(states: Sequence[str], n_runs: int) -> None:
    finished = states.count("finished")
    others = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states) - {"finished"}))
    message = f"Done: {finished} of {n_runs} runs finished" + (f"; {others}" if others else "") + "."
    if finished == n_runs:
        st.success(message + " Open **Feature space** to compare them.", icon=":material/check_circle:")
    else:
        st.warning(message + " The sidebar says what happened to each run.", icon=":material/warning:")


def _charts(runs: Sequence[LiveRun], class_names: Sequence[str], key: str) -> None:
    """Training curves and the live feature preview (plotly figures: every few seconds)."""
    losses = _curves(runs, "train_loss")
    accuracies = _curves(runs, "test_acc")
    if any(losses.values()) or any(accuracies.values()):
        first = next((history[-1] for history in accuracies.values() if history), {})
        height = CURVES_HEIGHT + 20 * max(0, math.ceil(len(runs) / 2) - 1)
        left, right = st.columns(2)
        left.plotly_chart(
            figures.training_curves(losses, "train_loss", "training loss", height=height), key=f"loss-{key}"
        )
        accuracy = figures.training_curves(
            accuracies, "test_acc", f"{_accuracy_name(first)}, after each epoch", height=height, percent=True
        )
        right.plotly_chart(accuracy, key=f"acc-{key}")
    previews = [run for run in runs if run.preview is not None]
    if previews and previews[0].config.feat_dim in (2, 3):
        st.caption("Test features on the unit circle/sphere after the latest epoch (a fixed subset of the test set).")
        _previews(runs, class_names, key)


def _curves(runs: Sequence[LiveRun], metric: str) -> dict[str, list[dict[str, Any]]]:
    """Each run's epochs that hold ``metric``, by the run's name."""
    return {run.name: [line for line in run.history if metric in line] for run in runs}


def _previews(runs: Sequence[LiveRun], class_names: Sequence[str], key: str) -> None:
    """One small circle or sphere per run: a row per variant with a column per seed when the runs have
    several seeds, else the variants side by side. Names are text above each chart, where they wrap (a
    plotly title this narrow was cut)."""
    several_seeds = len({run.config.seed for run in runs}) > 1
    if several_seeds:
        rows: dict[str, list[LiveRun]] = {}
        for run in runs:
            rows.setdefault(variant_label(run.config), []).append(run)
        groups = [(f"**{plain(variant)}**", members) for variant, members in rows.items()]
    else:
        groups = [("", list(runs))]
    index = 0
    for heading, members in groups:
        if heading:
            st.markdown(heading)
        columns = st.columns(PREVIEW_COLUMNS)  # as many as fit a row, so every chart has the same small size
        for position, run in enumerate(members):
            with columns[position % PREVIEW_COLUMNS]:
                label = f"seed {run.config.seed}" if several_seeds else f"**{plain(run.name)}**"
                if run.preview is None:
                    st.caption(f"{label} · no epoch yet")
                else:
                    st.markdown(f"{label} · epoch {run.preview.epoch}")
                    fig = figures.feature_scatter(
                        run.preview.features, run.preview.labels, class_names, height=PREVIEW_HEIGHT, legend=False
                    )
                    st.plotly_chart(fig, key=f"preview-{key}-{index}")
            index += 1
