"""Writing one run: its folder's files from start to end, each write atomic, and the status a failure leaves
behind."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from lab.runs import contents, tensor_files
from lab.runs.contents import RunStoreError
from lab.runs.tensor_files import RunFeatures, RunSnapshots
from lab.runs.io import (
    RunWriteError,
    describe_os_error,
    failed_writes,
    failed_writes_lock,
    remove_tree,
    run_key,
    save_tensors_atomic,
    shortened,
    write_atomic,
    write_json_atomic,
)
from lab.runs.record import (
    STATUSES,
)
from lab.settings.config import RunConfig

logger = logging.getLogger(__name__)


class RunWriter:
    """Writes one run's directory; used by the trainer only.

    Every write is retried once. One that still fails raises :class:`RunWriteError` saying where and why
    (a full disk: "disk full at FOLDER"); a failed status write also marks the run failed for this process's
    readers, since the file on disk still holds the last status that was written."""

    def __init__(self, run_dir: Path, config: RunConfig, owner: str = "") -> None:
        self.run_dir = run_dir
        self.run_id = run_dir.name
        self.config = config
        self._status: dict[str, Any] = {"owner": owner}  # the last status written
        self._write(lambda: write_json_atomic(run_dir / contents.CONFIG, config.to_dict()))
        self.set_status("running", message="starting", started=time.time())

    def _write(self, write: Callable[[], None]) -> None:
        try:
            write()
        except OSError as first:
            logger.warning("writing in %s failed (%s); trying once more", self.run_dir, first)
            try:
                write()
            except OSError as err:
                raise RunWriteError(describe_os_error(err, self.run_dir)) from err

    def set_status(self, status: str, **fields: Any) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        new = {**self._status, **fields, "status": status, "updated": time.time()}
        new.update(pid=os.getpid(), host=socket.gethostname())
        try:
            self._write(lambda: write_json_atomic(self.run_dir / contents.STATUS, new))
        except RunWriteError as err:
            with failed_writes_lock:
                failed_writes[run_key(self.run_dir)] = str(err)
            raise
        self._status = new
        with failed_writes_lock:
            failed_writes.pop(run_key(self.run_dir), None)

    def discard(self, reason: str) -> None:
        """Undo a run that never trained: remove its folder, or where that fails, mark it failed (``reason``);
        when even that cannot be written, this process's readers report it failed."""
        left = remove_tree(self.run_dir) if self.run_dir.exists() else []
        if not left:
            with failed_writes_lock:
                failed_writes.pop(run_key(self.run_dir), None)
            logger.info("removed run %s, which never trained: %s", self.run_id, reason)
            return
        try:
            self.set_status("failed", message=reason, finished=time.time())
        except RunWriteError as err:  # set_status has told this process's readers
            logger.error("run %s %s, and that could not be written: %s", self.run_id, reason, err)

    def write_metrics(self, metrics: list[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(m, sort_keys=True) + "\n" for m in metrics)
        self._write(lambda: write_atomic(self.run_dir / contents.METRICS, lines.encode()))

    def save_weights(self, model: torch.nn.Module, head: torch.nn.Module) -> None:
        tensors = tensor_files.weights_to_tensors(model, head)
        metadata = {"format": contents.WEIGHTS_FORMAT}
        self._write(lambda: save_tensors_atomic(self.run_dir / contents.WEIGHTS, tensors, metadata))

    def save_features(self, features: RunFeatures) -> None:
        """Write the features file, checked against itself and the run's config as a reader will check it."""
        tensors = features.to_tensors(self.run_id, tensor_files.RunLimits.of(self.config))
        metadata = {"format": contents.FEATURES_FORMAT}
        self._write(lambda: save_tensors_atomic(self.run_dir / contents.FEATURES, tensors, metadata))

    def save_snapshots(self, snapshots: RunSnapshots) -> None:
        """Write the snapshots file, checked against itself and the run's config as a reader will check it."""
        tensors = snapshots.to_tensors(self.run_id, tensor_files.RunLimits.of(self.config))
        metadata = {"format": contents.SNAPSHOTS_FORMAT}
        self._write(lambda: save_tensors_atomic(self.run_dir / contents.SNAPSHOTS, tensors, metadata))


@contextlib.contextmanager
def ended_on_error(writers: list[RunWriter]) -> Iterator[list[RunWriter]]:
    """Hold the writers of runs being set up: if the block raises (a full disk while the third run's folder
    is made), every run in ``writers`` is removed, since it never trained, or where it cannot be removed,
    marked failed with the error; none is left "running" for as long as this process lives."""
    try:
        yield writers
    except BaseException as err:
        reason = str(err) if isinstance(err, RunStoreError) else f"{type(err).__name__}: {err}"
        for writer in writers:
            writer.discard(f"it could not start: {shortened(reason)}")
        raise
