"""The run store: one directory per run under a runs folder, written atomically, read back safely.

Layout of ``RUNS/<run_id>/`` (file names and tensors are declared in :mod:`lab.runfiles`)::

    config.json            the RunConfig
    status.json            status, message, summary numbers, owner, start time, pid and host of the writer
    metrics.jsonl          one JSON object per finished epoch
    weights.safetensors    model.* and head.* tensors (parameters and buffers)
    features.safetensors   final test features, labels, logits and class directions; the fixed snapshot
                           subset's indices, penultimate activations and raw images (RunFeatures)
    snapshots.safetensors  the subset's features, class directions and test accuracy after every epoch
                           from epoch 0 (RunSnapshots)

Every file is written to a temporary name and renamed into place, so a reader sees either the old
or the new version, never half of one. Weights and features load only through safetensors. A
``running`` run whose writer process is gone is reported as ``interrupted``, and the temporary files
its writer left behind are deleted.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lab import runfiles
from lab.config import STORED_FIELDS, ConfigError, RunConfig
from lab.runfiles import RunFeatures, RunSnapshots, RunStoreError

logger = logging.getLogger(__name__)

STATUSES = ("running", "finished", "stopped", "diverged", "failed", "interrupted")
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
STALE_TEMPORARY_SECONDS = 60.0  # a writer renames its temporary file within moments; older ones are leftovers


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def save_tensors_atomic(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove_partial_writes(run_dir: Path, older_than: float = STALE_TEMPORARY_SECONDS) -> None:
    """Delete the temporary files a killed writer left behind (its finished files are untouched). Only
    files older than ``older_than`` seconds go: a younger one may belong to a writer on another host."""
    now = time.time()
    for leftover in run_dir.glob(".*.tmp"):
        try:
            if now - leftover.stat().st_mtime > older_than:
                leftover.unlink()
                logger.info("deleted %s, a partial write left by a writer that ended", leftover)
        except FileNotFoundError:
            continue
        except OSError as err:  # a read-only runs folder: the leftover does no harm
            logger.warning("could not delete the partial write %s: %s", leftover, err)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclasses.dataclass
class RunRecord:
    """A run as read from disk. ``error`` is set (and the rest may be partial) when files are bad."""

    run_id: str
    run_dir: Path
    config: RunConfig | None
    status: dict[str, Any]
    metrics: list[dict[str, Any]]
    error: str | None = None

    @property
    def state(self) -> str:
        return self.status.get("status", "failed")

    @property
    def experiment(self) -> str:
        return self.config.experiment if self.config else ""

    @property
    def owner(self) -> str:
        owner = self.status.get("owner", "")
        return owner if isinstance(owner, str) else ""

    @property
    def started(self) -> float | None:
        """When the run started training (seconds since the epoch), or None if that is not readable."""
        started = self.status.get("started")
        return float(started) if isinstance(started, (int, float)) and not isinstance(started, bool) else None

    def summary(self) -> dict[str, Any]:
        """The flat record the CLI prints, one JSON object per run."""
        config = self.config
        return {
            "run_id": self.run_id,
            "run_dir": str(self.run_dir),
            "experiment": config.experiment if config else None,
            "loss": config.loss if config else None,
            "dataset": config.dataset if config else None,
            "model": config.model if config else None,
            "feat_dim": config.feat_dim if config else None,
            "epochs": config.epochs if config else None,
            "epochs_done": len(self.metrics),
            "status": self.state,
            "message": self.error or self.status.get("message", ""),
            "test_acc": self.status.get("test_acc"),
            "train_seconds": self.status.get("train_seconds"),
            "images_per_second": self.status.get("images_per_second"),
        }


class RunWriter:
    """Writes one run's directory; used by the trainer only."""

    def __init__(self, run_dir: Path, config: RunConfig, owner: str = "") -> None:
        self.run_dir = run_dir
        self.run_id = run_dir.name
        self.config = config
        self._status: dict[str, Any] = {"owner": owner}
        write_json_atomic(run_dir / runfiles.CONFIG, config.to_dict())
        self.set_status("running", message="starting", started=time.time())

    def set_status(self, status: str, **fields: Any) -> None:
        assert status in STATUSES, status
        self._status.update(fields, status=status, updated=time.time(), pid=os.getpid(), host=socket.gethostname())
        write_json_atomic(self.run_dir / runfiles.STATUS, self._status)

    def write_metrics(self, metrics: list[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(m, sort_keys=True) + "\n" for m in metrics)
        write_atomic(self.run_dir / runfiles.METRICS, lines.encode())

    def save_weights(self, model: torch.nn.Module, head: torch.nn.Module) -> None:
        tensors = runfiles.weights_to_tensors(model, head)
        save_tensors_atomic(self.run_dir / runfiles.WEIGHTS, tensors, {"format": runfiles.WEIGHTS_FORMAT})

    def save_features(self, features: RunFeatures) -> None:
        tensors = features.to_tensors(self.run_id)
        save_tensors_atomic(self.run_dir / runfiles.FEATURES, tensors, {"format": runfiles.FEATURES_FORMAT})

    def save_snapshots(self, snapshots: RunSnapshots) -> None:
        tensors = snapshots.to_tensors(self.run_id)
        save_tensors_atomic(self.run_dir / runfiles.SNAPSHOTS, tensors, {"format": runfiles.SNAPSHOTS_FORMAT})


class RunStore:
    """All runs under one folder (default ``runs/``)."""

    def __init__(self, root: str | Path = "runs") -> None:
        self.root = Path(root)

    def create(self, config: RunConfig, owner: str = "") -> RunWriter:
        """A new run directory with a unique, readable id: ``<time>-<loss>-<n>``. ``owner`` is the app
        session that asked for it ("" for the CLI and shipped examples, which everyone sees)."""
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in range(1000):
            run_dir = self.root / f"{stamp}-{config.loss}-{n}"
            try:
                run_dir.mkdir()
            except FileExistsError:
                continue
            return RunWriter(run_dir, config, owner)
        raise RunStoreError(f"{self.root}: could not create a new run folder")

    def run_dir(self, run_id: str) -> Path:
        """The folder of ``run_id``; ids are plain names, so no id can point outside the runs folder."""
        if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id) or ".." in run_id:
            raise RunStoreError(f"run id {run_id!r} is not a valid run name")
        return self.root / run_id

    def run_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and RUN_ID_PATTERN.match(p.name))

    def load(self, run_id: str) -> RunRecord:
        """Read a run's config, status and metrics. Problems are reported in ``record.error``. A run
        whose writer has ended loses the temporary files it left behind."""
        run_dir = self.run_dir(run_id)
        if not (run_dir / runfiles.CONFIG).is_file():
            raise RunStoreError(f"run {run_id!r} not found in {self.root}")
        problems = []
        config = None
        try:
            config = RunConfig.from_dict(json.loads((run_dir / runfiles.CONFIG).read_text()), STORED_FIELDS)
        except (OSError, ValueError, TypeError) as err:
            problems.append(f"{runfiles.CONFIG} is unreadable ({err})")
        status: dict[str, Any] = {"status": "failed"}
        try:
            status = json.loads((run_dir / runfiles.STATUS).read_text())
            if not isinstance(status, dict) or status.get("status") not in STATUSES:
                raise ValueError("no valid status")
        except (OSError, ValueError) as err:
            problems.append(f"{runfiles.STATUS} is unreadable ({err})")
            status = {"status": "failed"}
        writer_alive = self._writer_alive(status)
        if status["status"] == "running" and not writer_alive:
            status = {
                **status,
                "status": "interrupted",
                "message": "the process training this run ended before it finished",
            }
        if not writer_alive:
            _remove_partial_writes(run_dir)
        metrics: list[dict[str, Any]] = []
        metrics_path = run_dir / runfiles.METRICS
        if metrics_path.is_file():
            try:
                metrics = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
            except ValueError as err:
                problems.append(f"{runfiles.METRICS} is unreadable ({err})")
        error = "; ".join(problems) if problems else None
        logger.debug("loaded run %s (%s) from %s", run_id, status["status"], run_dir)
        return RunRecord(run_id, run_dir, config, status, metrics, error)

    @staticmethod
    def _writer_alive(status: dict[str, Any]) -> bool:
        pid = status.get("pid")
        if status.get("host") != socket.gethostname() or not isinstance(pid, int):
            return False
        return _pid_alive(pid)

    def list(self) -> list[RunRecord]:
        """Every run, oldest first; runs with bad files are included with ``error`` set."""
        records = []
        for run_id in self.run_ids():
            try:
                records.append(self.load(run_id))
            except RunStoreError:
                continue  # a folder without config.json is not a run
        return records

    def experiments(self, owner: str | None = None) -> dict[str, list[RunRecord]]:
        """Runs grouped by experiment id, the most recently started experiment first, each group in the
        order its runs started training (runs without a readable start time last, by id; experiments
        with none at all last). With ``owner``, only the experiments of that app session and the shared
        ones (owner "")."""
        groups: dict[str, list[RunRecord]] = {}
        for record in self.list():
            if owner is None or record.owner in ("", owner):
                groups.setdefault(record.experiment or record.run_id, []).append(record)
        for records in groups.values():
            records.sort(key=_start_time)
        return dict(sorted(groups.items(), key=_newest_first))

    def _load_tensors(self, run_id: str, filename: str) -> dict[str, torch.Tensor]:
        path = self.run_dir(run_id) / filename
        if not path.is_file():
            raise RunStoreError(f"run {run_id}: {filename} is missing (the run did not finish writing it)")
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            raise RunStoreError(f"run {run_id}: {filename} is not a valid safetensors file ({err})") from None
        logger.info("loaded %d tensors from %s", len(tensors), path)
        return tensors

    def load_weights(self, run_id: str) -> dict[str, torch.Tensor]:
        """The weights file's tensors (``model.*`` and ``head.*``; :func:`lab.runfiles.split_weights`)."""
        return self._load_tensors(run_id, runfiles.WEIGHTS)

    def load_features(self, run_id: str) -> RunFeatures:
        return RunFeatures.from_tensors(self._load_tensors(run_id, runfiles.FEATURES), run_id)

    def load_snapshots(self, run_id: str) -> RunSnapshots:
        return RunSnapshots.from_tensors(self._load_tensors(run_id, runfiles.SNAPSHOTS), run_id)

    def read_files(self, run_id: str) -> dict[str, bytes]:
        """The bytes of every run file the run has written (of :data:`lab.runfiles.FILES`, in that order)."""
        run_dir = self.run_dir(run_id)
        return {name: (run_dir / name).read_bytes() for name in runfiles.FILES if (run_dir / name).is_file()}

    def modified(self, run_id: str, filename: str) -> float:
        """When the run's file ``filename`` (one of :data:`lab.runfiles.FILES`) was last written."""
        if filename not in runfiles.FILES:
            raise RunStoreError(f"{filename!r} is not a run file")
        return (self.run_dir(run_id) / filename).stat().st_mtime

    def size_bytes(self) -> int:
        """Disk space taken by the runs folder."""
        if not self.root.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def delete_experiment(self, experiment: str, owner: str) -> int:
        """Delete an experiment's runs that ``owner`` started; returns how many were deleted. Runs
        still training, and runs of other owners or shared ones, are kept."""
        deleted = 0
        for record in self.experiments(owner=owner).get(experiment, []):
            if record.owner == owner and record.state != "running":
                shutil.rmtree(record.run_dir)
                deleted += 1
        return deleted


def require_config(record: RunRecord) -> RunConfig:
    if record.config is None:
        raise ConfigError(f"run {record.run_id}: {record.error}")
    return record.config


def _start_time(record: RunRecord) -> float:
    return record.started if record.started is not None else float("inf")


def _newest_first(group: tuple[str, list[RunRecord]]) -> tuple[float, str]:
    experiment, records = group
    starts = [r.started for r in records if r.started is not None]
    return (-max(starts) if starts else float("inf"), experiment)
