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

import collections
import contextlib
import dataclasses
import errno
import functools
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from lab import runfiles
from lab.runfiles import RunFeatures, RunSnapshots, RunStoreError
from lab.settings.config import STORED_FIELDS, RunConfig
from lab.settings.errors import ConfigError
from lab.shown_text import count_text

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


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """A file to write ``path``'s new contents into: a temporary file in the same folder, renamed to ``path``
    when the block ends (synced first), removed if it raises, so ``path`` is whole or untouched."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    with atomic_output(path) as handle:
        handle.write(data)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def save_tensors_atomic(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` as a safetensors file at ``path`` through a temporary file and a rename. A failed
    write is an OSError naming the temporary file, as with :func:`write_atomic` (safetensors reports a full
    disk as its own error type, with the system's error number in the text)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        try:
            save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)
        except SafetensorError as err:
            raise _as_os_error(err, tmp) from err
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _as_os_error(err: SafetensorError, path: str) -> OSError:
    """safetensors' write error as the OSError it wraps: "... No space left on device (os error 28)"."""
    found = re.search(r"\(os error (\d+)\)", str(err))
    code = int(found.group(1)) if found else errno.EIO
    return OSError(code, os.strerror(code) if found else str(err), path)


def _short(text: str) -> str:
    return text if len(text) <= MAX_PROBLEM_CHARS else text[: MAX_PROBLEM_CHARS - 3] + "..."


@contextlib.contextmanager
def _opened(run_dir: Path, name: str) -> Iterator[tuple[int, os.stat_result] | None]:
    """An open descriptor of run file ``name`` and its stat, or None when the file does not exist.

    Only a plain file directly inside a run folder that is not itself a link is opened, and only when it is
    within the file's cap; anything else is a :class:`RunStoreError` naming the file and what is wrong."""
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
            yield None
            return
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
            yield fd, info
        finally:
            os.close(fd)
    finally:
        os.close(folder)


def read_run_file(run_dir: Path, name: str) -> bytes | None:
    """The bytes of run file ``name`` (one of :data:`lab.runfiles.FILES`), or None when it does not exist.

    Only a plain file directly inside a run folder that is not itself a link is read, and at most the
    file's cap; anything else is a :class:`RunStoreError` naming the file and what is wrong."""
    with _opened(run_dir, name) as opened:
        return None if opened is None else _read_capped(opened[0], name)


def _read_capped(fd: int, name: str) -> bytes:
    cap = runfiles.MAX_BYTES[name]
    data = _read_at_most(fd, cap + 1)
    if len(data) > cap:  # it grew after fstat
        raise RunStoreError(f"{name} is more than the {runfiles.size_text(cap)} a run's {name} may hold")
    return data


@contextlib.contextmanager
def run_file_chunks(run_dir: Path, name: str, chunk: int = 1 << 20) -> Iterator[Iterator[bytes] | None]:
    """Run file ``name``'s bytes a chunk at a time, read as :func:`read_run_file` reads it (None when the file
    does not exist), for copying a file without holding it whole."""
    with _opened(run_dir, name) as opened:
        yield None if opened is None else _chunks(opened[0], name, chunk)


def _chunks(fd: int, name: str, chunk: int) -> Iterator[bytes]:
    cap, read = runfiles.MAX_BYTES[name], 0
    while data := os.read(fd, chunk):
        read += len(data)
        if read > cap:  # it grew after fstat
            raise RunStoreError(f"{name} is more than the {runfiles.size_text(cap)} a run's {name} may hold")
        yield data


def _pread_exactly(fd: int, size: int, offset: int, into: memoryview | None = None) -> bytes:
    """``size`` bytes of ``fd`` from ``offset`` (into ``into`` when given); an OSError when the file is shorter."""
    target = memoryview(bytearray(size)) if into is None else into
    done = 0
    while done < size:
        if hasattr(os, "preadv"):
            got = os.preadv(fd, [target[done:]], offset + done)
        else:  # no positional reads into a buffer (Windows): a chunk at a time, copied in
            os.lseek(fd, offset + done, os.SEEK_SET)
            chunk = os.read(fd, min(size - done, 1 << 24))
            target[done : done + len(chunk)] = chunk
            got = len(chunk)
        if got == 0:
            raise OSError(errno.EIO, f"the file ends {size - done} bytes early")
        done += got
    return bytes(target) if into is None else b""


def _read_tensor(fd: int, header: runfiles.Header, name: str) -> torch.Tensor:
    """One tensor of a safetensors file, read straight into its own memory."""
    info = header.tensors[name]
    first, _ = header.offsets[name]
    raw = torch.empty(info.nbytes, dtype=torch.uint8)
    if info.nbytes:
        _pread_exactly(fd, info.nbytes, first, memoryview(raw.numpy()))
    return raw.view(info.dtype).reshape(info.shape)


def file_identity(info: os.stat_result) -> tuple[int, int, int, int]:
    """What changes whenever a file is replaced or rewritten: its device, inode, size and modification time."""
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


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


def _parse(name: str, data: bytes) -> Any:
    try:
        if name == runfiles.METRICS:
            return [runfiles.parse_json(line) for line in data.splitlines() if line.strip()]
        return runfiles.parse_json(data)
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise RunStoreError(f"{name} is unreadable (not valid JSON: {err})") from None


def _read_json(run_dir: Path, name: str) -> Any:
    """A run's JSON file parsed with bounded numbers and nesting; None when absent."""
    data = read_run_file(run_dir, name)
    return None if data is None else _parse(name, data)


class _Parsed:
    """What was made of each small run file (config.json, status.json), kept while the file is unchanged:
    listing runs re-reads only the files that changed since (a page lists every run on every rerun)."""

    SIZE = 8192  # files kept: a few KB each

    def __init__(self) -> None:
        self._entries: collections.OrderedDict[tuple[str, str], tuple[tuple[int, ...], Any]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_dir: Path, name: str, make: Callable[[Any], Any]) -> Any:
        """``make(parsed JSON or None)`` for run file ``name``, from the cache when the file's identity is the
        one it was made from. A RunStoreError (also ``make``'s) is raised again each time, from the cache too."""
        key = (_key(run_dir), name)
        with _opened(run_dir, name) as opened:
            if opened is None:
                self.forget(key)
                return make(None)
            identity = file_identity(opened[1])
            with self._lock:
                cached = self._entries.get(key)
                if cached is not None and cached[0] == identity:
                    self._entries.move_to_end(key)
                    result = cached[1]
                    if isinstance(result, RunStoreError):
                        raise RunStoreError(str(result))
                    return result
            try:
                result = make(_parse(name, _read_capped(opened[0], name)))
            except RunStoreError as err:
                result = err
        with self._lock:
            self._entries[key] = (identity, result)
            self._entries.move_to_end(key)
            while len(self._entries) > self.SIZE:
                self._entries.popitem(last=False)
        if isinstance(result, RunStoreError):
            raise RunStoreError(str(result))
        return result

    def forget(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._entries.pop(key, None)


_parsed = _Parsed()


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
    read_metrics: list[dict[str, Any]] | None = None  # metrics.jsonl's epochs once read; None: not read yet
    error: str | None = None
    fallback_experiment: str = ""  # the experiment an unusable config.json still names: the run stays in it

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """metrics.jsonl's epochs, read on first use: listing runs reads only their config and status. A
        malformed line ends the epochs there and is added to ``error``."""
        if self.read_metrics is None:
            metrics, problem = read_metrics(self.run_dir)
            if problem:
                self.error = f"{self.error}; {problem}" if self.error else problem
            self.read_metrics = metrics
        return self.read_metrics

    @property
    def epochs_done(self) -> int:
        """Epochs trained so far, from the status (older runs whose status does not say: their metrics)."""
        epoch = self.status.get("epoch")
        return epoch if isinstance(epoch, int) else len(self.metrics)

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
            "epochs_done": self.epochs_done,
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

    def discard(self, reason: str) -> None:
        """Undo a run that never trained: remove its folder, or where that fails, mark it failed (``reason``);
        when even that cannot be written, this process's readers report it failed."""
        left = _remove_tree(self.run_dir) if self.run_dir.exists() else []
        if not left:
            with _failed_writes_lock:
                _failed_writes.pop(_key(self.run_dir), None)
            logger.info("removed run %s, which never trained: %s", self.run_id, reason)
            return
        try:
            self.set_status("failed", message=reason, finished=time.time())
        except RunWriteError as err:  # set_status has told this process's readers
            logger.error("run %s %s, and that could not be written: %s", self.run_id, reason, err)

    def write_metrics(self, metrics: list[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(m, sort_keys=True) + "\n" for m in metrics)
        self._write(lambda: write_atomic(self.run_dir / runfiles.METRICS, lines.encode()))

    def save_weights(self, model: torch.nn.Module, head: torch.nn.Module) -> None:
        tensors = runfiles.weights_to_tensors(model, head)
        metadata = {"format": runfiles.WEIGHTS_FORMAT}
        self._write(lambda: save_tensors_atomic(self.run_dir / runfiles.WEIGHTS, tensors, metadata))

    def save_features(self, features: RunFeatures) -> None:
        """Write the features file, checked against itself and the run's config as a reader will check it."""
        tensors = features.to_tensors(self.run_id, runfiles.RunLimits.of(self.config))
        metadata = {"format": runfiles.FEATURES_FORMAT}
        self._write(lambda: save_tensors_atomic(self.run_dir / runfiles.FEATURES, tensors, metadata))

    def save_snapshots(self, snapshots: RunSnapshots) -> None:
        """Write the snapshots file, checked against itself and the run's config as a reader will check it."""
        tensors = snapshots.to_tensors(self.run_id, runfiles.RunLimits.of(self.config))
        metadata = {"format": runfiles.SNAPSHOTS_FORMAT}
        self._write(lambda: save_tensors_atomic(self.run_dir / runfiles.SNAPSHOTS, tensors, metadata))


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
            writer.discard(f"it could not start: {_short(reason)}")
        raise


class RunStore:
    """All runs under one folder (default ``runs/``)."""

    def __init__(self, root: str | Path = "runs") -> None:
        self.root = Path(root)
        with _started_lock:
            first_use = _key(self.root) not in _started
            _started.add(_key(self.root))
        if first_use:  # the first store of a runs folder in a process: empty what killed deletes left
            self.empty_trash()

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
        config, fallback = None, ""
        try:
            config, problem, fallback = _parsed.get(run_dir, runfiles.CONFIG, _config_of)
            if problem:
                problems.append(problem)
        except Exception as err:  # RunStoreError: a link, a pipe, a file over its cap, not JSON
            problems.append(_problem(runfiles.CONFIG, err))
        status: dict[str, Any] = {"status": "failed"}  # no owner: unknown
        try:
            checked, status_problems = _parsed.get(run_dir, runfiles.STATUS, _status_of)
            status = dict(checked)
            problems += status_problems
        except Exception as err:
            problems.append(_problem(runfiles.STATUS, err))
        status = self._current(run_dir, status)
        error = "; ".join(problems) if problems else None
        logger.debug("loaded run %s (%s) from %s", run_id, status["status"], run_dir)
        return RunRecord(run_id, run_dir, config, status, None, error, fallback)

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

    def limits(self, run_id: str) -> runfiles.RunLimits:
        """What run ``run_id``'s config says its files hold (:class:`lab.runfiles.RunLimits`); a
        :class:`RunStoreError` when the config cannot be read, since then nothing can be checked."""
        run_dir = self.run_dir(run_id)
        try:
            config, problem, _ = _parsed.get(run_dir, runfiles.CONFIG, _config_of)
        except RunStoreError as err:
            problem = str(err)
        if config is None:
            raise RunStoreError(f"run {run_id}: {problem}, so its other files cannot be checked against it")
        try:
            return runfiles.RunLimits.of(config)
        except Exception as err:  # a model or loss that cannot be built with these settings
            raise RunStoreError(f"run {run_id}: its config cannot be built ({type(err).__name__}: {err})") from None

    def _load_tensors(
        self,
        run_id: str,
        filename: str,
        check: Callable[[dict[str, runfiles.TensorInfo]], None],
        names: Any = None,
        read: bool = True,
        missing_ok: bool = False,
    ) -> dict[str, torch.Tensor]:
        """The tensors of a run's safetensors file (those in ``names``, default all), read one at a time after
        ``check`` has accepted the header's types and shapes: a file is never read whole, and a tensor is
        allocated only once its size is known to fit. With ``read`` False only the header is checked; with
        ``missing_ok`` a missing file gives no tensors."""
        run_dir = self.run_dir(run_id)
        try:
            with _opened(run_dir, filename) as opened:
                if opened is None:
                    if missing_ok:
                        return {}
                    raise RunStoreError(f"{filename} is missing (the run did not finish writing it)")
                fd, info = opened
                try:
                    length = runfiles.header_length(_pread_exactly(fd, 8, 0), info.st_size)
                    header = runfiles.parse_header(_pread_exactly(fd, length, 8), info.st_size)
                except (ValueError, OSError) as err:
                    raise RunStoreError(f"{filename} is not a valid safetensors file ({_short(str(err))})") from None
                wanted = header.tensors if names is None else {k: v for k, v in header.tensors.items() if k in names}
                check(wanted)
                try:
                    tensors = {name: _read_tensor(fd, header, name) for name in wanted if read}
                except OSError as err:
                    raise RunStoreError(f"{filename} cannot be read ({err.strerror or err})") from None
        except RunStoreError as err:
            message = str(err)
            raise RunStoreError(message if message.startswith("run ") else f"run {run_id}: {message}") from None
        logger.info("loaded %d tensors from %s", len(tensors), run_dir / filename)
        return tensors

    def load_weights(self, run_id: str) -> dict[str, torch.Tensor]:
        """The weights file's tensors (``model.*`` and ``head.*``; :func:`lab.runfiles.split_weights`), exactly
        the state of the model and head the run's config builds, every floating-point value finite."""
        limits = self.limits(run_id)
        tensors = self._load_tensors(
            run_id, runfiles.WEIGHTS, lambda infos: runfiles.check_weights(infos, run_id, limits)
        )
        runfiles.check_weight_values(tensors, run_id)
        return tensors

    def load_features(self, run_id: str) -> RunFeatures:
        """The features file, checked against itself and against the run's config."""
        limits = self.limits(run_id)
        check = functools.partial(RunFeatures.check_layout, run_id=run_id, limits=limits)
        tensors = self._load_tensors(run_id, runfiles.FEATURES, check, RunFeatures.names())
        return RunFeatures.from_tensors(tensors, run_id, limits)

    def load_snapshots(self, run_id: str) -> RunSnapshots:
        """The snapshots file, checked against itself and against the run's config."""
        limits = self.limits(run_id)
        check = functools.partial(RunSnapshots.check_layout, run_id=run_id, limits=limits)
        tensors = self._load_tensors(run_id, runfiles.SNAPSHOTS, check, RunSnapshots.names())
        return RunSnapshots.from_tensors(tensors, run_id, limits)

    def check_files(self, run_id: str) -> None:
        """Check the headers of the run's safetensors files against its config, reading no tensor (what an
        export does before it copies the files); a :class:`RunStoreError` names what does not fit."""
        limits = self.limits(run_id)
        checks = {
            runfiles.WEIGHTS: lambda infos: runfiles.check_weights(infos, run_id, limits),
            runfiles.FEATURES: functools.partial(RunFeatures.check_layout, run_id=run_id, limits=limits),
            runfiles.SNAPSHOTS: functools.partial(RunSnapshots.check_layout, run_id=run_id, limits=limits),
        }
        for filename, check in checks.items():
            self._load_tensors(run_id, filename, check, read=False, missing_ok=True)

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
        self.empty_trash()
        if not records:
            return 0
        for record in records:
            locked = _unremovable(record.run_dir)
            if locked is not None:
                raise RunStoreError(
                    f"no permission to remove the files in {locked}; nothing was deleted (the runs folder's owner "
                    "can delete it, or change its permissions)"
                )
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
        left = _remove_tree(trash)
        if left:
            raise RunStoreError(
                f"{experiment} ({count_text(len(moved), 'run')}) is gone from the list, but its files could not all be "
                f"removed ({left[0]}): they stay in {trash} until LossLens next starts, or until you remove them"
            )
        logger.info("deleted experiment %s: %d runs", experiment, len(moved))
        return len(moved)

    def empty_trash(self, older_than: float = STALE_TEMPORARY_SECONDS) -> list[str]:
        """Remove the trash folders that deletes left behind (killed midway, or unable to remove a file), those
        untouched for ``older_than`` seconds: a younger one may be a delete under way in another process.
        Returns what could not be removed, each ``path: reason``, and logs it."""
        left = []
        for entry in self._entries_quietly():
            if entry.name.startswith(TRASH_PREFIX) and entry.is_dir(follow_symlinks=False):
                try:
                    if time.time() - entry.stat(follow_symlinks=False).st_mtime <= older_than:
                        continue
                except OSError:
                    continue
                left += _remove_tree(Path(entry.path))
        if left:
            logger.warning("the trash in %s could not be emptied: %d entries stay (%s)", self.root, len(left), left[0])
        return left

    def _entries_quietly(self) -> list[os.DirEntry[str]]:
        """The runs folder's entries, none when it cannot be listed (what lists runs says why)."""
        try:
            return self._entries()
        except RunStoreError as err:
            logger.debug("%s", err)
            return []


_started: set[str] = set()  # runs folders this process has opened a store on (their trash is emptied once)
_started_lock = threading.Lock()


def _unremovable(run_dir: Path) -> Path | None:
    """A folder inside ``run_dir`` (or itself) whose entries this process may not remove, or None."""
    for folder, _, _ in os.walk(run_dir):  # never follows links
        if not os.access(folder, os.W_OK | os.X_OK):
            return Path(folder)
    return None


def _config_of(raw: Any) -> tuple[RunConfig | None, str | None, str]:
    """config.json's config, or None with its problem and the experiment the file still names."""
    try:
        if raw is None:
            raise RunStoreError(f"{runfiles.CONFIG} is missing")
        return RunConfig.from_dict(raw, STORED_FIELDS), None, ""
    except Exception as err:  # ConfigError, TypeError from a mistyped field, ...
        return None, _problem(runfiles.CONFIG, err), _named_experiment(raw)


def _status_of(raw: Any) -> tuple[dict[str, Any], list[str]]:
    """status.json's checked fields and problems; a status that cannot be used raises RunStoreError."""
    if raw is None:
        raise RunStoreError(f"{runfiles.STATUS} is missing, so the run's owner is unknown")
    checked, problems = runfiles.check_status(raw)
    if checked.get("status") not in STATUSES:
        raise RunStoreError(f"{runfiles.STATUS} is unreadable (status must be one of {', '.join(STATUSES)})")
    return checked, [_short(problem) for problem in problems]


def read_metrics(run_dir: Path) -> tuple[list[dict[str, Any]], str | None]:
    """metrics.jsonl's epochs up to the first malformed line, and the problem that ended them (or None)."""
    try:
        metrics, problem = runfiles.check_metrics(_read_json(run_dir, runfiles.METRICS) or [])
    except Exception as err:
        return [], _problem(runfiles.METRICS, err)
    return metrics, _short(f"{runfiles.METRICS} is unreadable ({problem})") if problem else None


def _named_experiment(raw_config: Any) -> str:
    """The experiment an unusable config's JSON object names, if it is a plausible name."""
    name = raw_config.get("experiment") if isinstance(raw_config, dict) else None
    return name if isinstance(name, str) and 0 < len(name) <= 200 and name.isprintable() else ""


def _remove_tree(path: Path) -> list[str]:
    """Remove a folder; links inside it are removed, never followed (shutil.rmtree's fd-based walk). Returns
    what could not be removed, each as ``path: reason``."""
    left: list[str] = []

    def report(function: Any, name: str, exc_info: Any) -> None:
        err = exc_info[1]
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        left.append(f"{name}: {reason}")
        logger.warning("could not remove %s: %s", name, reason)

    shutil.rmtree(path, onerror=report)
    return left


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
