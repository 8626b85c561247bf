"""Training jobs shared by every app session: a bounded number train at once, the rest wait in a queue.

A :class:`TrainingJob` trains an experiment on a background thread and exposes a thread-safe
:class:`JobSnapshot` of its progress. The app keeps one :class:`JobManager` per server process. Each
browser submits under its own owner credential; a job can be seen and stopped only by its owner, each
owner may have a bounded number of jobs queued or running, and the server as a whole too. A browser finds
its job through its owner (:meth:`JobManager.current_job`), never through an id it could be handed.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from lab.runs.io import describe_os_error
from lab.runs.record import RunRecord
from lab.runs.store import RunStore, RunStoreError
from lab.settings.config import RunConfig
from lab.training.backends.base import Backend
from lab.training.loop import TrainingProgress, train_experiment
from lab.training.optimizer import warm_up

logger = logging.getLogger(__name__)


class TrainingJob:
    """An experiment training on a background thread. Thread-safe to poll from a UI.

    Poll it with :meth:`snapshot`. ``records`` fills as runs end; ``error`` holds a message if the
    job could not start (bad data, bad device, a Ray cluster out of reach). ``backend`` makes the backend
    it trains through (:func:`lab.training.backends.make_backend`), on its own thread; None trains in this process.
    """

    def __init__(
        self,
        configs: Sequence[RunConfig],
        store: RunStore,
        owner: str = "",
        on_done: Callable[[], None] | None = None,
        backend: Callable[[], Backend] | None = None,
    ) -> None:
        self.configs = list(configs)
        self.backend = backend
        self.store = store
        self.owner = owner
        self.on_done = on_done
        self.stop_event = threading.Event()
        self.latest: dict[int, TrainingProgress] = {}
        self.history: dict[int, list[dict[str, Any]]] = {}
        self.previews: dict[int, TrainingProgress] = {}
        self.records: list[RunRecord] = []
        self.error: str | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="losslens-training", daemon=True)
        self._finished = threading.Event()
        self.finished_at = 0.0  # time.monotonic() when it ended

    def _on_progress(self, progress: TrainingProgress) -> None:
        with self._lock:
            self.latest[progress.run_index] = progress
            if progress.metrics is not None:
                self.history.setdefault(progress.run_index, []).append(progress.metrics)
            if progress.snapshot is not None:
                self.previews[progress.run_index] = progress

    def _work(self) -> None:
        try:
            if self.backend is None:
                records = train_experiment(
                    self.configs, self.store, on_progress=self._on_progress, stop=self.stop_event, owner=self.owner
                )
            else:
                with self.backend() as backend:
                    records = backend.run(
                        self.configs, self.store, on_progress=self._on_progress, stop=self.stop_event, owner=self.owner
                    )
            with self._lock:
                self.records = records
        except Exception as err:  # reported to the UI, which shows it
            logger.error("the training job of %s could not run: %s", self.experiment, err, exc_info=True)
            with self._lock:
                self.error = _job_error(err)
        finally:
            self.finished_at = time.monotonic()
            self._finished.set()  # before on_done: it may start the next job, which counts running ones
            if self.on_done is not None:
                self.on_done()

    @property
    def experiment(self) -> str:
        return self.configs[0].experiment if self.configs else ""

    def start(self) -> TrainingJob:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()

    def cancel(self) -> None:
        """End a job that was never started (taken off the queue)."""
        self.stop_event.set()
        self.finished_at = time.monotonic()
        self._finished.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def done(self) -> bool:
        """Finished, failed or cancelled."""
        return self._finished.is_set()

    @property
    def running(self) -> bool:
        """Started and not yet finished."""
        return self._thread.is_alive() and not self._finished.is_set()

    def snapshot(self) -> JobSnapshot:
        """A consistent copy of the progress so far."""
        with self._lock:
            history = {k: list(v) for k, v in self.history.items()}
            return JobSnapshot(dict(self.latest), history, dict(self.previews))


def _job_error(err: Exception) -> str:
    """What the Train page shows for a job that could not run."""
    if isinstance(err, ValueError):  # bad settings, a missing dataset, a runs folder that cannot be written
        return str(err)
    if isinstance(err, OSError):
        return describe_os_error(err)
    return f"{type(err).__name__}: {err}"


@dataclasses.dataclass(frozen=True)
class JobSnapshot:
    """Per run index: the newest progress, the per-epoch metrics so far, and the newest progress
    that carried a feature snapshot (for the live preview)."""

    latest: dict[int, TrainingProgress]
    history: dict[int, list[dict[str, Any]]]
    previews: dict[int, TrainingProgress]


def default_max_running() -> int:
    """Trainings at once: $LOSSLENS_MAX_TRAININGS, else 1 per two CPU cores (at least 1)."""
    configured = os.environ.get("LOSSLENS_MAX_TRAININGS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, (os.cpu_count() or 2) // 2)


MAX_JOBS_PER_OWNER = 2  # queued or running: one training plus the next (a stopped one may still be finishing)
MAX_JOBS = 16  # queued or running, every owner together
# Owners are cheap (a new cookie is a new owner), so those that have not yet finished a run share a part of
# the server's jobs: a crowd of fresh identities cannot fill the queue for those who have trained here.
MAX_NEWCOMER_JOBS = 8
# A job's size in run-epochs (each run's epochs, summed), which is what holds the server: the largest preset is
# 30, a form experiment of 9 losses x 3 seeds x 12 epochs is 324.
MAX_RUNS_PER_JOB = 100
MAX_RUN_EPOCHS_PER_JOB = 1_200
MAX_RUN_EPOCHS_PER_OWNER = 2_000  # queued or running, one owner's jobs together
FINISHED_JOB_SECONDS = 1800.0  # how long an owner's last finished job stays for the live view
MAX_FINISHED_JOBS = 64  # finished jobs kept in memory, every owner together


class JobLimitError(Exception):
    """A job was refused because it is too big, or its owner or the server has as many as it may queue; the
    message says what to do and can be shown as it is."""


def run_epochs(configs: Sequence[RunConfig]) -> int:
    """A job's size: the epochs of its runs, summed."""
    return sum(config.epochs for config in configs)


def check_job_size(configs: Sequence[RunConfig]) -> None:
    """Raise :class:`JobLimitError` when an experiment is larger than one training on the server may be,
    naming the cap and the experiment's size."""
    variants = len({config.variant or config.loss for config in configs})
    seeds = len({config.seed for config in configs})
    shape = f"{variants:,} variants x {seeds:,} seeds" if variants * seeds == len(configs) else "its runs"
    if len(configs) > MAX_RUNS_PER_JOB:
        raise JobLimitError(
            f"This training has {len(configs):,} runs ({shape}); one training on this server may have at most "
            f"{MAX_RUNS_PER_JOB:,}: choose fewer variants or seeds."
        )
    size = run_epochs(configs)
    if size > MAX_RUN_EPOCHS_PER_JOB:
        raise JobLimitError(
            f"This training is {size:,} run-epochs ({len(configs):,} runs, each run's epochs summed); one training "
            f"on this server may be at most {MAX_RUN_EPOCHS_PER_JOB:,}: choose fewer variants, seeds or epochs."
        )


class JobManager:
    """The server's trainings: runs up to ``max_running`` jobs at once and queues the rest, at most
    :data:`MAX_JOBS_PER_OWNER` per owner and :data:`MAX_JOBS` in all. A finished job stays only while a live
    view may still show it: the newest of each owner, for :data:`FINISHED_JOB_SECONDS`. Every method is safe
    to call from any thread. On creation (when the app starts) it warms up, on a background thread, what the
    first training would import."""

    def __init__(self, store: RunStore, max_running: int | None = None) -> None:
        self.store = store
        self.max_running = max_running or default_max_running()
        self._jobs: dict[str, TrainingJob] = {}  # in submission order
        self._queue: list[str] = []
        self._finished_owners: set[str] = set()  # owners with a finished run: no longer newcomers
        self._lock = threading.Lock()
        self.warmed = threading.Event()  # set once :func:`lab.training.optimizer.warm_up` has run
        threading.Thread(target=self._warm_up, name="losslens-warm-up", daemon=True).start()

    def _warm_up(self) -> None:
        try:
            warm_up()
        finally:
            self.warmed.set()

    def submit(self, configs: Sequence[RunConfig], owner: str, backend: Callable[[], Backend] | None = None) -> str:
        """Queue an experiment (validated configs) for ``owner``, trained through ``backend`` (None: this
        process); it starts when a slot is free. Raises :class:`JobLimitError` when the experiment is larger
        than a training may be, or the owner or the server has as much queued as it may."""
        check_job_size(configs)
        newcomer = not self._has_finished_run(owner)
        job = TrainingJob(configs, self.store, owner=owner, on_done=self._job_done, backend=backend)
        with self._lock:
            self._forget_finished()
            active = [other for other in self._jobs.values() if not other.done]
            mine = [other for other in active if other.owner == owner]
            if len(mine) >= MAX_JOBS_PER_OWNER:
                raise JobLimitError(
                    f"You already have {MAX_JOBS_PER_OWNER} trainings queued or running: wait until one has "
                    "finished, or stop one, before starting another."
                )
            held = sum(run_epochs(other.configs) for other in mine)
            if held + run_epochs(configs) > MAX_RUN_EPOCHS_PER_OWNER:
                raise JobLimitError(
                    f"Your trainings queued or running come to {held:,} run-epochs and this one adds "
                    f"{run_epochs(configs):,}; one browser may have at most {MAX_RUN_EPOCHS_PER_OWNER:,} queued or "
                    "running: wait until one has finished, or stop one."
                )
            if len(active) >= MAX_JOBS:
                raise JobLimitError(
                    f"This server already has {MAX_JOBS} trainings queued or running: try again when one has finished."
                )
            if newcomer and sum(other.owner not in self._finished_owners for other in active) >= MAX_NEWCOMER_JOBS:
                raise JobLimitError(
                    f"This server already has {MAX_NEWCOMER_JOBS} trainings queued or running from browsers that have "
                    "not finished one here yet: try again when one has finished."
                )
            job_id = uuid.uuid4().hex[:12]
            self._jobs[job_id] = job
            self._queue.append(job_id)
        logger.info("job %s queued: experiment %s, %d runs", job_id, job.experiment, len(configs))
        self._start_queued()
        return job_id

    def _has_finished_run(self, owner: str) -> bool:
        """Whether ``owner`` has a finished run here: in a job of this server, or on disk from an earlier one."""
        with self._lock:
            if owner in self._finished_owners:
                return True
        try:
            found = any(record.owner == owner and record.state == "finished" for record in self.store.list())
        except RunStoreError as err:
            logger.warning("cannot tell whether an owner has trained here: %s", err)
            return False
        if found:
            with self._lock:
                self._finished_owners.add(owner)
        return found

    def _job_done(self) -> None:
        with self._lock:
            for job in self._jobs.values():
                if job.done and any(record.state == "finished" for record in job.records):
                    self._finished_owners.add(job.owner)
        self._start_queued()

    def _start_queued(self) -> None:
        """Start queued jobs while slots are free. The next is the oldest job of the owner served least: with
        the fewest jobs running or recently ended (the kept ones), so an owner's second job waits behind
        everyone else's first."""
        with self._lock:
            running = sum(1 for job in self._jobs.values() if job.running)
            while self._queue and running < self.max_running:
                served = collections.Counter(
                    job.owner for job_id, job in self._jobs.items() if job_id not in self._queue
                )
                job_id = min(self._queue, key=lambda queued: served[self._jobs[queued].owner])  # keeps queue order
                self._queue.remove(job_id)
                self._jobs[job_id].start()
                running += 1
                logger.info("job %s started (%d of at most %d training)", job_id, running, self.max_running)

    def _forget_finished(self) -> None:
        """Drop finished jobs no live view needs: all but each owner's newest, those finished longer than
        FINISHED_JOB_SECONDS ago, and the oldest beyond MAX_FINISHED_JOBS. Call with the lock held."""
        now = time.monotonic()
        newest: dict[str, str] = {}
        for job_id, job in self._jobs.items():
            if job.done and (job.owner not in newest or job.finished_at >= self._jobs[newest[job.owner]].finished_at):
                newest[job.owner] = job_id
        recent = [job_id for job_id in newest.values() if now - self._jobs[job_id].finished_at < FINISHED_JOB_SECONDS]
        recent.sort(key=lambda job_id: self._jobs[job_id].finished_at)
        kept = set(recent[-MAX_FINISHED_JOBS:])
        for job_id in [job_id for job_id, job in self._jobs.items() if job.done and job_id not in kept]:
            del self._jobs[job_id]

    def get(self, job_id: str, owner: str) -> TrainingJob | None:
        """The job if it exists and belongs to ``owner``."""
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.owner == owner else None

    def state(self, job_id: str) -> str:
        """``queued``, ``running`` or ``done`` (also for a job no longer kept)."""
        with self._lock:
            if job_id in self._queue:
                return "queued"
            job = self._jobs.get(job_id)
        return "running" if job is not None and job.running else "done"

    def queue_position(self, job_id: str) -> int:
        """1 for the next job to start; 0 when not queued."""
        with self._lock:
            return self._queue.index(job_id) + 1 if job_id in self._queue else 0

    def queue_length(self) -> int:
        with self._lock:
            return len(self._queue)

    def stop(self, job_id: str, owner: str) -> bool:
        """Stop (or unqueue) a job of ``owner``; False when it is not theirs."""
        job = self.get(job_id, owner)
        if job is None:
            return False
        job.stop()
        with self._lock:
            if job_id in self._queue:
                self._queue.remove(job_id)
                job.cancel()
        logger.info("job %s stopped by its owner", job_id)
        return True

    def jobs_of(self, owner: str) -> list[str]:
        """The ids of ``owner``'s jobs still kept, oldest first."""
        with self._lock:
            self._forget_finished()
            return [job_id for job_id, job in self._jobs.items() if job.owner == owner]

    def active_job(self, owner: str) -> str:
        """``owner``'s newest queued or running job, "" when none: the one-training-per-browser guard."""
        with self._lock:
            active = [job_id for job_id, job in self._jobs.items() if job.owner == owner and not job.done]
        return active[-1] if active else ""

    def current_job(self, owner: str) -> str:
        """The job ``owner``'s Train page shows: the newest queued or running one, else the last finished one
        still kept, else ""."""
        jobs = self.jobs_of(owner)
        return self.active_job(owner) or (jobs[-1] if jobs else "")
