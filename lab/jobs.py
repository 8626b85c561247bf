"""Training jobs shared by every app session: a bounded number train at once, the rest wait in a queue.

A :class:`TrainingJob` trains an experiment on a background thread and exposes a thread-safe
:class:`JobSnapshot` of its progress. The app keeps one :class:`JobManager` per server process. Each
browser session submits under its own owner token; a job can be stopped only by its owner, and a session
sees only its own jobs. Jobs are referred to by id, so a refreshed page re-attaches to its job through
the id kept in the URL.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from lab.config import RunConfig
from lab.runstore import RunRecord, RunStore
from lab.trainer import Progress, train_experiment, warm_up

logger = logging.getLogger(__name__)


class TrainingJob:
    """An experiment training on a background thread. Thread-safe to poll from a UI.

    Poll it with :meth:`snapshot`. ``records`` fills as runs end; ``error`` holds a message if the
    job could not start (bad data, bad device).
    """

    def __init__(
        self, configs: Sequence[RunConfig], store: RunStore, owner: str = "", on_done: Callable[[], None] | None = None
    ) -> None:
        self.configs = list(configs)
        self.store = store
        self.owner = owner
        self.on_done = on_done
        self.stop_event = threading.Event()
        self.latest: dict[int, Progress] = {}
        self.history: dict[int, list[dict[str, Any]]] = {}
        self.previews: dict[int, Progress] = {}
        self.records: list[RunRecord] = []
        self.error: str | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="losslens-training", daemon=True)
        self._finished = threading.Event()

    def _on_progress(self, progress: Progress) -> None:
        with self._lock:
            self.latest[progress.run_index] = progress
            if progress.metrics is not None:
                self.history.setdefault(progress.run_index, []).append(progress.metrics)
            if progress.snapshot is not None:
                self.previews[progress.run_index] = progress

    def _work(self) -> None:
        try:
            records = train_experiment(
                self.configs, self.store, on_progress=self._on_progress, stop=self.stop_event, owner=self.owner
            )
            with self._lock:
                self.records = records
        except Exception as err:  # reported to the UI, which shows it
            logger.error("the training job of %s could not run: %s", self.experiment, err, exc_info=True)
            with self._lock:
                self.error = f"{type(err).__name__}: {err}" if not isinstance(err, ValueError) else str(err)
        finally:
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

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """Started and not yet finished."""
        return self._thread.is_alive() and not self._finished.is_set()

    def snapshot(self) -> JobSnapshot:
        """A consistent copy of the progress so far."""
        with self._lock:
            history = {k: list(v) for k, v in self.history.items()}
            return JobSnapshot(dict(self.latest), history, dict(self.previews))


@dataclasses.dataclass(frozen=True)
class JobSnapshot:
    """Per run index: the newest progress, the per-epoch metrics so far, and the newest progress
    that carried a feature snapshot (for the live preview)."""

    latest: dict[int, Progress]
    history: dict[int, list[dict[str, Any]]]
    previews: dict[int, Progress]


def default_max_running() -> int:
    """Trainings at once: $LOSSLENS_MAX_TRAININGS, else 1 per two CPU cores (at least 1)."""
    configured = os.environ.get("LOSSLENS_MAX_TRAININGS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, (os.cpu_count() or 2) // 2)


class JobManager:
    """The server's trainings: runs up to ``max_running`` jobs at once and queues the rest. On creation
    (when the app starts) it warms up, on a background thread, what the first training would import."""

    def __init__(self, store: RunStore, max_running: int | None = None) -> None:
        self.store = store
        self.max_running = max_running or default_max_running()
        self._jobs: dict[str, TrainingJob] = {}
        self._queue: list[str] = []
        self._lock = threading.Lock()
        self.warmed = threading.Event()  # set once :func:`lab.trainer.warm_up` has run
        threading.Thread(target=self._warm_up, name="losslens-warm-up", daemon=True).start()

    def _warm_up(self) -> None:
        try:
            warm_up()
        finally:
            self.warmed.set()

    def submit(self, configs: Sequence[RunConfig], owner: str) -> str:
        """Queue an experiment (validated configs) for ``owner``; it starts when a slot is free."""
        job_id = uuid.uuid4().hex[:12]
        job = TrainingJob(configs, self.store, owner=owner, on_done=self._start_queued)
        with self._lock:
            self._jobs[job_id] = job
            self._queue.append(job_id)
        logger.info("job %s queued: experiment %s, %d runs", job_id, job.experiment, len(configs))
        self._start_queued()
        return job_id

    def _start_queued(self) -> None:
        with self._lock:
            running = sum(1 for job in self._jobs.values() if job.running)
            while self._queue and running < self.max_running:
                job_id = self._queue.pop(0)
                self._jobs[job_id].start()
                logger.info("job %s started (%d of at most %d training)", job_id, running + 1, self.max_running)
                running += 1

    def get(self, job_id: str, owner: str) -> TrainingJob | None:
        """The job if it exists and belongs to ``owner``."""
        job = self._jobs.get(job_id)
        return job if job is not None and job.owner == owner else None

    def state(self, job_id: str) -> str:
        """``queued``, ``running`` or ``done``."""
        with self._lock:
            if job_id in self._queue:
                return "queued"
        return "running" if self._jobs[job_id].running else "done"

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
        logger.info("job %s stopped by its owner", job_id)
        return True

    def jobs_of(self, owner: str) -> list[str]:
        return [job_id for job_id, job in self._jobs.items() if job.owner == owner]
