"""Reading run files without trusting them and writing them atomically: plain files only, never through a link,
size-capped, parsed with bounded numbers; every write goes to a temporary file renamed into place and is
retried once."""

from __future__ import annotations

import collections
import contextlib
import errno
import json
import logging
import os
import re
import shutil
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

from lab.runs import contents, safetensors_header, tensor_files
from lab.runs.contents import RunStoreError

logger = logging.getLogger(__name__)


STALE_TEMPORARY_SECONDS = 60.0  # a writer renames its temporary file within moments; older ones are leftovers
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


def shortened(text: str) -> str:
    return text if len(text) <= MAX_PROBLEM_CHARS else text[: MAX_PROBLEM_CHARS - 3] + "..."


@contextlib.contextmanager
def open_run_file(run_dir: Path, name: str) -> Iterator[tuple[int, os.stat_result] | None]:
    """An open descriptor of run file ``name`` and its stat, or None when the file does not exist.

    Only a plain file directly inside a run folder that is not itself a link is opened, and only when it is
    within the file's cap; anything else is a :class:`RunStoreError` naming the file and what is wrong."""
    cap = contents.MAX_BYTES[name]
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
                    f"{name} is {contents.size_text(info.st_size)}, more than the {contents.size_text(cap)} "
                    f"a run's {name} may hold"
                )
            yield fd, info
        finally:
            os.close(fd)
    finally:
        os.close(folder)


def read_run_file(run_dir: Path, name: str) -> bytes | None:
    """The bytes of run file ``name`` (one of :data:`lab.contents.FILES`), or None when it does not exist.

    Only a plain file directly inside a run folder that is not itself a link is read, and at most the
    file's cap; anything else is a :class:`RunStoreError` naming the file and what is wrong."""
    with open_run_file(run_dir, name) as opened:
        return None if opened is None else _read_capped(opened[0], name)


def _read_capped(fd: int, name: str) -> bytes:
    cap = contents.MAX_BYTES[name]
    data = _read_at_most(fd, cap + 1)
    if len(data) > cap:  # it grew after fstat
        raise RunStoreError(f"{name} is more than the {contents.size_text(cap)} a run's {name} may hold")
    return data


@contextlib.contextmanager
def run_file_chunks(run_dir: Path, name: str, chunk: int = 1 << 20) -> Iterator[Iterator[bytes] | None]:
    """Run file ``name``'s bytes a chunk at a time, read as :func:`read_run_file` reads it (None when the file
    does not exist), for copying a file without holding it whole."""
    with open_run_file(run_dir, name) as opened:
        yield None if opened is None else _chunks(opened[0], name, chunk)


def _chunks(fd: int, name: str, chunk: int) -> Iterator[bytes]:
    cap, read = contents.MAX_BYTES[name], 0
    while data := os.read(fd, chunk):
        read += len(data)
        if read > cap:  # it grew after fstat
            raise RunStoreError(f"{name} is more than the {contents.size_text(cap)} a run's {name} may hold")
        yield data


def pread_exactly(fd: int, size: int, offset: int, into: memoryview | None = None) -> bytes:
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


def read_tensor(fd: int, header: safetensors_header.Header, name: str) -> torch.Tensor:
    """One tensor of a safetensors file, read straight into its own memory."""
    info = header.tensors[name]
    first, _ = header.offsets[name]
    raw = torch.empty(info.nbytes, dtype=torch.uint8)
    if info.nbytes:
        pread_exactly(fd, info.nbytes, first, memoryview(raw.numpy()))
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


def problem_text(name: str, err: Exception) -> str:
    """A run file's problem for ``record.error``: store errors already name the file."""
    return shortened(str(err) if isinstance(err, RunStoreError) else f"{name} is unreadable ({err})")


def _parse(name: str, data: bytes) -> Any:
    try:
        if name == contents.METRICS:
            return [contents.parse_json(line) for line in data.splitlines() if line.strip()]
        return contents.parse_json(data)
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise RunStoreError(f"{name} is unreadable (not valid JSON: {err})") from None


def read_json(run_dir: Path, name: str) -> Any:
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
        key = (run_key(run_dir), name)
        with open_run_file(run_dir, name) as opened:
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


parsed_files = _Parsed()


def remove_partial_writes(run_dir: Path, older_than: float = STALE_TEMPORARY_SECONDS) -> None:
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


def pid_alive(pid: int) -> bool:
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
failed_writes: dict[str, str] = {}


failed_writes_lock = threading.Lock()


def run_key(run_dir: Path) -> str:
    return os.path.abspath(run_dir)


def write_failure(run_dir: Path) -> str | None:
    """Why this process could not write ``run_dir``'s status, or None."""
    with failed_writes_lock:
        return failed_writes.get(run_key(run_dir))


def remove_tree(path: Path) -> list[str]:
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
