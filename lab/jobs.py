"""Training jobs shared by every app session: a bounded number train at once, the rest wait in a queue.

The app keeps one :class:`JobManager` per server process. Each browser session submits under its own
owner token; a job can be stopped only by its owner, and a session sees only its own jobs. Jobs are
referred to by id, so a refreshed page re-attaches to its job through the id kept in the URL.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Sequence

from lab.config import RunConfig
from lab.runstore import RunStore
from lab.trainer import TrainingJob, warm_up


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
        self._start_queued()
        return job_id

    def _start_queued(self) -> None:
        with self._lock:
            running = sum(1 for job in self._jobs.values() if job.running)
            while self._queue and running < self.max_running:
                self._jobs[self._queue.pop(0)].start()
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
        return True

    def jobs_of(self, owner: str) -> list[str]:
        return [job_id for job_id, job in self._jobs.items() if job.owner == owner]
