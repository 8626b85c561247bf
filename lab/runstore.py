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
or the new version, never half of one. A write that fails (a full disk) is retried once; a run whose
failure could not even be written down is reported ``failed`` by this process instead of ``running``.

Run files are untrusted input: a run folder may come from an unzipped export or from anyone who can write
the runs folder. A reader opens only plain files, never through a symbolic link (a link to /dev/zero or a
FIFO is an error, not a hang), up to a size cap per file (:data:`lab.runfiles.MAX_BYTES`); JSON numbers and
nesting are bounded, every field is type-checked, and weights and features load only through safetensors.
Whatever is wrong with one run becomes that run's ``error``; the other runs still list.

Ownership: ``owner`` is the app session that started a run; "" marks a shared run (the command line, the
shipped examples). A run whose status.json is missing or unreadable has an unknown owner (None): it passes
no ownership check and is never shared, so a broken file cannot make a private run public.

A ``running`` run whose writer process on this machine is gone is reported ``interrupted``, and the
temporary files its writer left behind are deleted. A ``running`` run written from another machine (a
shared runs folder) is reported ``elsewhere``: this machine cannot tell whether it still trains.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import re
import shutil
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file

from lab import runfiles
from lab.config import STORED_FIELDS, ConfigError, RunConfig
from lab.runfiles import RunFeatures, RunSnapshots, RunStoreError

logger = logging.getLogger(__name__)

STATUSES = ("running", "finished", "stopped", "diverged", "failed", "interrupted")  # what a writer writes
ELSEWHERE = "elsewhere"  # read as: running according to a writer on another machine
STATES = (*STATUSES, ELSEWHERE)  # what RunRecord.state may be
ACTIVE_STATES = ("running", ELSEWHERE)  # runs that may still be written to: never deleted
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # used with fullmatch: "x\n" is no id
STALE_TEMPORARY_SECONDS = 60.0  # a writer renames its temporary file within moments; older ones are leftovers
FUTURE_SECONDS = 60.0  # a start time further ahead than this is not believed (clock skew is smaller)
TRASH_PREFIX = ".trash-"  # a deleted experiment's runs, moved together before they are removed
MAX_PROBLEM_CHARS = 300  # one problem in a record's error; a message must not carry a whole file

_OPEN_FILE = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_OPEN_FOLDER = _OPEN_FILE | getattr(os, "O_DIRECTORY", 0)


class RunWriteError(RunStoreError):
    """A run file could not be written (a full disk, a read-only or missing runs folder)."""


def describe_os_error(err: OSError, path: str | Path | None = None) -> str:
    """One sentence for an OS error on ``path`` (else the error's own file name): what happened and what to do."""
    where = str(path if path is not None else err.filename or "a file or folder")
    reason = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full at {where}: free some space or choose a folder on another disk"
    if err.errno == errno.EROFS:
        return f"{where} is on a read-only file system: choose a folder you can write to"
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"no permission to use {where}: choose a folder you can read and write, or change its permissions"
    if err.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"{where} is not a folder: choose a folder (or a name that does not exist yet)"
    if err.errno == errno.ENOENT:
        return f"{where} does not exist: check the path"
    return f"{where}: {reason}"


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


def _short(text: str) -> str:
    return text if len(text) <= MAX_PROBLEM_CHARS else text[: MAX_PROBLEM_CHARS - 3] + "..."


def read_run_file(run_dir: Path, name: str) -> bytes | None:
    """The bytes of run file ``name`` (one of :data:`lab.runfiles.FILES`), or None when it does not exist.

    Only a plain file directly inside a run folder that is not itself a link is read, and at most the
    file's cap; anything else is a :class:`RunStoreError` naming the file and what is wrong."""
    cap = runfiles.MAX_BYTES[name]
    try:
        folder = os.open(run_dir, _OPEN_FOLDER)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR) and os.path.islink(run_dir):
            raise RunStoreError("the run folder is a symbolic link; LossLens does not follow links") from None
        raise RunStoreError(f"the run folder cannot be opened ({err.strerror})") from None
    try:
        try:
            fd = os.open(name, _OPEN_FILE, dir_fd=folder)
        except FileNotFoundError:
            return None
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.EMLINK):
                raise RunStoreError(f"{name} is a symbolic link; run files must be plain files") from None
            raise RunStoreError(f"{name} cannot be opened ({err.strerror})") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise RunStoreError(f"{name} is not a plain file (a device, a pipe or a folder)")
            if info.st_size > cap:
                raise RunStoreError(
                    f"{name} is {runfiles.size_text(info.st_size)}, more than the {runfiles.size_text(cap)} "
                    f"a run's {name} may hold"
                )
            data = _read_at_most(fd, cap + 1)
            if len(data) > cap:  # it grew after fstat
                raise RunStoreError(f"{name} is more than the {runfiles.size_text(cap)} a run's {name} may hold")
            return data
        finally:
            os.close(fd)
    finally:
        os.close(folder)


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks, size = [], 0
    while size < limit:
        chunk = os.read(fd, min(limit - size, 1 << 24))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _problem(name: str, err: Exception) -> str:
    """A run file's problem for ``record.error``: store errors already name the file."""
    return _short(str(err) if isinstance(err, RunStoreError) else f"{name} is unreadable ({err})")


def _read_json(run_dir: Path, name: str) -> Any:
    """A run's JSON file parsed with bounded numbers and nesting; None when absent."""
    data = read_run_file(run_dir, name)
    if data is None:
        return None
    try:
        if name == runfiles.METRICS:
            return [runfiles.parse_json(line) for line in data.splitlines() if line.strip()]
        return runfiles.parse_json(data)
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise RunStoreError(f"{name} is unreadable (not valid JSON: {err})") from None


def _remove_partial_writes(run_dir: Path, older_than: float = STALE_TEMPORARY_SECONDS) -> None:
    """Delete the temporary files a killed writer left behind (its finished files are untouched). Only
    files older than ``older_than`` seconds go: a younger one may belong to a writer on another host."""
    now = time.time()
    for leftover in run_dir.glob(".*.tmp"):
        try:
            if now - leftover.lstat().st_mtime > older_than:
                leftover.unlink()
                logger.info("deleted %s, a partial write left by a writer that ended", leftover)
        except FileNotFoundError:
            continue
        except OSError as err:  # a read-only runs folder: the leftover does no harm
            logger.warning("could not delete the partial write %s: %s", leftover, err)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:  # kill(0) and kill(-n) signal process groups: no writer has such a pid
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


# Runs this process writes whose status file is out of date because writing it failed: run folder -> message.
# A failure handler that cannot write "failed" (the disk is full) leaves "running" on disk; readers in this
# process report the failure instead, and the run can be deleted to free the space.
_failed_writes: dict[str, str] = {}
_failed_writes_lock = threading.Lock()


def _key(run_dir: Path) -> str:
    return os.path.abspath(run_dir)


def write_failure(run_dir: Path) -> str | None:
    """Why this process could not write ``run_dir``'s status, or None."""
    with _failed_writes_lock:
        return _failed_writes.get(_key(run_dir))


@dataclasses.dataclass
class RunRecord:
    """A run as read from disk. ``error`` is set (and the rest may be partial) when files are bad.

    ``status`` holds only type-checked values (see :func:`lab.runfiles.check_status`); prefer the typed
    accessors below."""

    run_id: str
    run_dir: Path
    config: RunConfig | None
    status: dict[str, Any]
    metrics: list[dict[str, Any]]
    error: str | None = None
    fallback_experiment: str = ""  # the experiment an unusable config.json still names: the run stays in it

    @property
    def state(self) -> str:
        """One of :data:`STATES`."""
        state = self.status.get("status")
        return state if state in STATES else "failed"

    @property
    def experiment(self) -> str:
        return self.config.experiment if self.config else self.fallback_experiment

    @property
    def owner(self) -> str | None:
        """The app session that started the run, "" for a shared one, None when unknown (no status.json
        or an unreadable one): an unknown owner matches nobody and is never shared."""
        owner = self.status.get("owner")
        return owner if isinstance(owner, str) else None

    @property
    def message(self) -> str:
        message = self.status.get("message", "")
        return message if isinstance(message, str) else ""

    @property
    def started(self) -> float | None:
        """When the run started training (seconds since the epoch), or None if that is not readable or is
        in the future (a planted future time must not make a run the newest)."""
        started = self.status.get("started")
        if not isinstance(started, float) or started > time.time() + FUTURE_SECONDS:
            return None
        return started

    @property
    def updated(self) -> float:
        """When the status last changed (0.0 when not readable): with ``run_dir``, a cache key."""
        updated = self.status.get("updated")
        return updated if isinstance(updated, float) else 0.0

    @property
    def test_acc(self) -> float | None:
        return self._number("test_acc")

    @property
    def train_seconds(self) -> float | None:
        return self._number("train_seconds")

    @property
    def images_per_second(self) -> float | None:
        return self._number("images_per_second")

    def _number(self, key: str) -> float | None:
        value = self.status.get(key)
        return value if isinstance(value, float) else None

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
            "message": self.error or self.message,
            "test_acc": self.test_acc,
            "train_seconds": self.train_seconds,
            "images_per_second": self.images_per_second,
        }


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
        self._write(lambda: write_json_atomic(run_dir / runfiles.CONFIG, config.to_dict()))
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
            self._write(lambda: write_json_atomic(self.run_dir / runfiles.STATUS, new))
        except RunWriteError as err:
            with _failed_writes_lock:
                _failed_writes[_key(self.run_dir)] = str(err)
            raise
        self._status = new
        with _failed_writes_lock:
            _failed_writes.pop(_key(self.run_dir), None)

    def write_metrics(self, metrics: list[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(m, sort_keys=True) + "\n" for m in metrics)
        self._write(lambda: write_atomic(self.run_dir / runfiles.METRICS, lines.encode()))

    def save_weights(self, model: torch.nn.Module, head: torch.nn.Module) -> None:
        tensors = runfiles.weights_to_tensors(model, head)
        metadata = {"format": runfiles.WEIGHTS_FORMAT}
        self._write(lambda: save_tensors_atomic(self.run_dir / runfiles.WEIGHTS, tensors, metadata))

    def save_features(self, features: RunFeatures) -> None:
        tensors = features.to_tensors(self.run_id)
        metadata = {"format": runfiles.FEATURES_FORMAT}
        self._write(lambda: save_tensors_atomic(self.run_dir / runfiles.FEATURES, tensors, metadata))

    def save_snapshots(self, snapshots: RunSnapshots) -> None:
        tensors = snapshots.to_tensors(self.run_id)
        metadata = {"format": runfiles.SNAPSHOTS_FORMAT}
        self._write(lambda: save_tensors_atomic(self.run_dir / runfiles.SNAPSHOTS, tensors, metadata))


class RunStore:
    """All runs under one folder (default ``runs/``)."""

    def __init__(self, root: str | Path = "runs") -> None:
        self.root = Path(root)

    def create(self, config: RunConfig, owner: str = "") -> RunWriter:
        """A new run directory with a unique, readable id: ``<time>-<loss>-<n>``. ``owner`` is the app
        session that asked for it ("" for the CLI and shipped examples, which everyone sees). A folder
        that cannot be written is a :class:`RunWriteError`, and no half-made run folder is left."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            for n in range(1000):
                run_dir = self.root / f"{stamp}-{config.loss}-{n}"
                try:
                    run_dir.mkdir()
                except FileExistsError:
                    continue
                break
            else:
                raise RunWriteError(f"{self.root}: could not create a new run folder")
        except OSError as err:
            raise RunWriteError(f"cannot create a run: {describe_os_error(err, self.root)}") from err
        try:
            return RunWriter(run_dir, config, owner)
        except RunWriteError as err:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise RunWriteError(f"cannot create a run: {err}") from err

    def write_problem(self) -> str | None:
        """Why new runs cannot be written here now (a file in the way, a read-only folder, a full disk), or
        None; creates the runs folder when it is missing. For a message before anything trains."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root):
                pass
        except OSError as err:
            return describe_os_error(err, self.root)
        return None

    def run_dir(self, run_id: str) -> Path:
        """The folder of ``run_id``; ids are plain names, so no id can point outside the runs folder."""
        if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id) or ".." in run_id:
            raise RunStoreError(f"run id {run_id!r} is not a valid run name")
        return self.root / run_id

    def _entries(self) -> list[os.DirEntry[str]]:
        """The runs folder's entries; none when it does not exist yet."""
        try:
            with os.scandir(self.root) as entries:
                return list(entries)
        except FileNotFoundError:
            return []
        except OSError as err:
            raise RunStoreError(f"cannot list the runs folder: {describe_os_error(err, self.root)}") from None

    def run_ids(self) -> list[str]:
        """Names of the folders that hold a run (a config.json), sorted."""
        ids = []
        for entry in self._entries():
            if RUN_ID_PATTERN.fullmatch(entry.name) and ".." not in entry.name and self._is_run(Path(entry.path)):
                ids.append(entry.name)
        return sorted(ids)

    @staticmethod
    def _is_run(run_dir: Path) -> bool:
        try:
            return stat.S_ISDIR(os.stat(run_dir).st_mode) and os.path.lexists(run_dir / runfiles.CONFIG)
        except OSError:
            return False

    def load(self, run_id: str) -> RunRecord:
        """Read a run's config, status and metrics. Every problem, whatever it is, is reported in
        ``record.error``; only an id that is not a run raises. A run whose writer has ended loses the
        temporary files it left behind."""
        run_dir = self.run_dir(run_id)
        if not self._is_run(run_dir):
            raise RunStoreError(f"run {run_id!r} not found in {self.root}")
        try:
            return self._load(run_id, run_dir)
        except Exception as err:  # the files are untrusted: whatever they do, only this run is affected
            logger.warning("run %s cannot be read: %s", run_id, err, exc_info=True)
            problem = _short(f"the run cannot be read ({type(err).__name__}: {err})")
            return RunRecord(run_id, run_dir, None, {"status": "failed"}, [], problem)

    def _load(self, run_id: str, run_dir: Path) -> RunRecord:
        if run_dir.is_symlink():
            problem = "the run folder is a symbolic link; LossLens reads run folders only inside the runs folder"
            return RunRecord(run_id, run_dir, None, {"status": "failed"}, [], problem)
        problems = []
        config = raw_config = None
        try:
            raw_config = _read_json(run_dir, runfiles.CONFIG)
            config = RunConfig.from_dict(raw_config, STORED_FIELDS)
        except Exception as err:  # ConfigError, RunStoreError, TypeError from a mistyped field, ...
            problems.append(_problem(runfiles.CONFIG, err))
        status: dict[str, Any] = {"status": "failed"}  # no owner: unknown
        try:
            raw = _read_json(run_dir, runfiles.STATUS)
            if raw is None:
                raise RunStoreError(f"{runfiles.STATUS} is missing, so the run's owner is unknown")
            checked, status_problems = runfiles.check_status(raw)
            if checked.get("status") not in STATUSES:
                raise ValueError(f"status must be one of {', '.join(STATUSES)}")
            status = checked
            problems += [_short(problem) for problem in status_problems]
        except Exception as err:
            problems.append(_problem(runfiles.STATUS, err))
        status = self._current(run_dir, status)
        metrics: list[dict[str, Any]] = []
        try:
            metrics, problem = runfiles.check_metrics(_read_json(run_dir, runfiles.METRICS) or [])
            if problem:
                problems.append(_short(f"{runfiles.METRICS} is unreadable ({problem})"))
        except Exception as err:
            problems.append(_problem(runfiles.METRICS, err))
        error = "; ".join(problems) if problems else None
        logger.debug("loaded run %s (%s) from %s", run_id, status["status"], run_dir)
        fallback = _named_experiment(raw_config) if config is None else ""
        return RunRecord(run_id, run_dir, config, status, metrics, error, fallback)

    @staticmethod
    def _current(run_dir: Path, status: dict[str, Any]) -> dict[str, Any]:
        """The status as it stands now: a ``running`` run whose writer failed, ended or is on another machine
        says so. Temporary files of a writer that is not alive here are cleaned up."""
        here = status.get("host") == socket.gethostname()
        pid = status.get("pid")
        alive = here and isinstance(pid, int) and _pid_alive(pid)
        if status["status"] == "running":
            failure = write_failure(run_dir) if alive and pid == os.getpid() else None
            if failure is not None:
                status = {**status, "status": "failed", "message": failure}
            elif not alive and here:
                status = {**status, "status": "interrupted"}
                status["message"] = "the process training this run ended before it finished"
            elif not alive:
                status = {**status, "status": ELSEWHERE}
                status["message"] = (
                    "running elsewhere or interrupted: another machine was training it, and this one cannot "
                    "tell whether it still is"
                )
        if not alive:
            # a dead writer of this host left its temporary files for good; any other may still be renaming
            # one (another host's writer, or the app caching an analysis into a finished run)
            writer_ended_here = here and status["status"] == "interrupted"
            _remove_partial_writes(run_dir, older_than=0.0 if writer_ended_here else STALE_TEMPORARY_SECONDS)
        return status

    def list(self) -> list[RunRecord]:
        """Every run, oldest first; runs with bad files are included with ``error`` set."""
        records = []
        for run_id in self.run_ids():
            try:
                records.append(self.load(run_id))
            except RunStoreError:
                continue  # removed since it was listed
        return records

    def experiments(self, owner: str | None = None) -> dict[str, list[RunRecord]]:
        """Runs grouped by experiment id, the most recently started experiment first, each group in the
        order its runs started training (runs without a readable start time last, by id; experiments
        with none at all last). With ``owner``, only the runs of that app session and the shared ones
        (owner ""); runs of unknown owner only without ``owner``."""
        groups: dict[str, list[RunRecord]] = {}
        for record in self.list():
            if owner is None or record.owner in ("", owner):
                groups.setdefault(record.experiment or record.run_id, []).append(record)
        for records in groups.values():
            records.sort(key=_start_time)
        return dict(sorted(groups.items(), key=_newest_first))

    def _load_tensors(self, run_id: str, filename: str) -> dict[str, torch.Tensor]:
        run_dir = self.run_dir(run_id)
        try:
            data = read_run_file(run_dir, filename)
        except RunStoreError as err:
            raise RunStoreError(f"run {run_id}: {err}") from None
        if data is None:
            raise RunStoreError(f"run {run_id}: {filename} is missing (the run did not finish writing it)")
        try:
            tensors = load_safetensors(data)
        except Exception as err:  # SafetensorError and whatever else a crafted header provokes
            problem = _short(str(err))
            raise RunStoreError(f"run {run_id}: {filename} is not a valid safetensors file ({problem})") from None
        logger.info("loaded %d tensors from %s", len(tensors), run_dir / filename)
        return tensors

    def load_weights(self, run_id: str) -> dict[str, torch.Tensor]:
        """The weights file's tensors (``model.*`` and ``head.*``; :func:`lab.runfiles.split_weights`)."""
        return self._load_tensors(run_id, runfiles.WEIGHTS)

    def load_features(self, run_id: str) -> RunFeatures:
        return RunFeatures.from_tensors(self._load_tensors(run_id, runfiles.FEATURES), run_id)

    def load_snapshots(self, run_id: str) -> RunSnapshots:
        return RunSnapshots.from_tensors(self._load_tensors(run_id, runfiles.SNAPSHOTS), run_id)

    def read_files(self, run_id: str) -> dict[str, bytes]:
        """The bytes of every run file the run has written (of :data:`lab.runfiles.FILES`, in that order),
        each read as :func:`read_run_file` reads it."""
        run_dir = self.run_dir(run_id)
        files = {}
        for name in runfiles.FILES:
            try:
                data = read_run_file(run_dir, name)
            except RunStoreError as err:
                raise RunStoreError(f"run {run_id}: {err}") from None
            if data is not None:
                files[name] = data
        return files

    def import_files(self, run_id: str, files: dict[str, bytes]) -> RunRecord:
        """Write into run ``run_id``'s folder the files of the same run trained elsewhere (a Ray worker's
        :meth:`read_files`), each atomically and the status last, so no reader sees the run ended before
        its files are in place."""
        unknown = sorted(set(files) - set(runfiles.FILES))
        if unknown:
            raise RunStoreError(f"run {run_id}: {', '.join(unknown)} is not a run file")
        run_dir = self.run_dir(run_id)
        try:
            for name in sorted(files, key=lambda name: name == runfiles.STATUS):
                write_atomic(run_dir / name, files[name])
        except OSError as err:
            raise RunWriteError(f"run {run_id}: {describe_os_error(err, run_dir)}") from err
        return self.load(run_id)

    def modified(self, run_id: str, filename: str) -> float:
        """When the run's file ``filename`` (one of :data:`lab.runfiles.FILES`) was last written."""
        if filename not in runfiles.FILES:
            raise RunStoreError(f"{filename!r} is not a run file")
        try:
            return (self.run_dir(run_id) / filename).lstat().st_mtime
        except OSError as err:
            raise RunStoreError(f"run {run_id}: {filename} cannot be read ({err.strerror})") from None

    def size_bytes(self) -> int:
        """Disk space taken by the runs folder (links count as themselves, never what they point to)."""
        total = 0
        for folder, _, names in os.walk(self.root):
            for name in names:
                try:
                    total += os.lstat(os.path.join(folder, name)).st_size
                except OSError:
                    continue
        return total

    def delete_experiment(self, experiment: str, owner: str) -> int:
        """Delete the runs of ``experiment`` that ``owner`` started, all of them or none; returns how many.

        Runs of other owners, shared runs and runs of unknown owner are kept. A run still training (or
        possibly training on another machine) refuses the whole delete with a :class:`RunStoreError`. Each
        run folder is first renamed into one trash folder inside the runs folder (a rename moves a link,
        never what it points to); if any rename fails, the others are renamed back and nothing is deleted.
        """
        records = [r for r in self.experiments(owner=owner).get(experiment, []) if r.owner == owner]
        busy = [r.run_id for r in records if r.state in ACTIVE_STATES]
        if busy:
            raise RunStoreError(f"run {busy[0]} is still training: stop it before deleting the experiment")
        self._remove_stale_trash()
        if not records:
            return 0
        try:
            trash = Path(tempfile.mkdtemp(prefix=TRASH_PREFIX, dir=self.root))
        except OSError as err:
            raise RunStoreError(f"cannot delete: {describe_os_error(err, self.root)}") from None
        moved: list[tuple[Path, Path]] = []
        for record in records:
            try:
                os.rename(record.run_dir, trash / record.run_id)
            except OSError as err:
                for original, moved_to in reversed(moved):
                    try:
                        os.rename(moved_to, original)
                    except OSError as back:
                        logger.error("could not move %s back to %s: %s", moved_to, original, back)
                _remove_tree(trash)
                raise RunStoreError(
                    f"could not delete run {record.run_id} ({err.strerror}); nothing was deleted"
                ) from None
            moved.append((record.run_dir, trash / record.run_id))
        with _failed_writes_lock:
            for original, _ in moved:
                _failed_writes.pop(_key(original), None)
        _remove_tree(trash)
        logger.info("deleted experiment %s: %d runs", experiment, len(moved))
        return len(moved)

    def _remove_stale_trash(self) -> None:
        """Remove trash folders a delete that was killed midway left behind."""
        for entry in self._entries():
            if entry.name.startswith(TRASH_PREFIX) and entry.is_dir(follow_symlinks=False):
                try:
                    if time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMPORARY_SECONDS:
                        _remove_tree(Path(entry.path))
                except OSError:
                    continue


def _named_experiment(raw_config: Any) -> str:
    """The experiment an unusable config's JSON object names, if it is a plausible name."""
    name = raw_config.get("experiment") if isinstance(raw_config, dict) else None
    return name if isinstance(name, str) and 0 < len(name) <= 200 and name.isprintable() else ""


def _remove_tree(path: Path) -> None:
    """Remove a folder; links inside it are removed, never followed (shutil.rmtree's fd-based walk)."""

    def report(function: Any, name: str, exc_info: Any) -> None:
        logger.warning("could not remove %s: %s", name, exc_info[1])

    shutil.rmtree(path, onerror=report)


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
