"""A folder of named numpy arrays that a server can keep between restarts without trusting it.

Each entry is one safetensors file (tensors only: reading one cannot run code, unlike a pickle), named
by a hash of its key, read only when it is a regular file (no symlink is followed, a FIFO cannot block)
no larger than the folder's bound. The folder holds at most ``max_bytes``: after each write the least
recently used entries go. A folder that cannot be read or written only makes the cache miss.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save

logger = logging.getLogger(__name__)

SUFFIX = ".safetensors"


class ArrayCache:
    """Arrays by key under ``folder``, at most ``max_bytes`` in all."""

    def __init__(self, folder: str | Path, max_bytes: int) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes

    def path(self, key: str) -> Path:
        return self.folder / (hashlib.sha256(key.encode()).hexdigest()[:40] + SUFFIX)

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key``, or None (missing, not a regular file, too big, unreadable)."""
        path = self.path(key)
        data = _read_regular(path, self.max_bytes)
        if data is None:
            return None
        try:
            arrays = load(data)
        except (SafetensorError, ValueError) as err:
            logger.warning("ignoring the unreadable cache entry %s: %s", path, err)
            return None
        try:
            os.utime(path, follow_symlinks=False)  # recently used: evicted last
        except OSError:
            pass
        return arrays

    def put(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        """Store ``arrays`` under ``key`` (atomically), then evict the oldest entries beyond the bound."""
        data = save({name: np.ascontiguousarray(value) for name, value in arrays.items()})
        if len(data) > self.max_bytes:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".entry-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, self.path(key))
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as err:
            logger.warning("could not write the cache folder %s: %s", self.folder, err)
            return
        self.evict()

    def evict(self) -> None:
        """Delete the least recently used entries until the folder holds at most ``max_bytes``."""
        try:
            with os.scandir(self.folder) as entries:
                found = [
                    (info.st_mtime, info.st_size, entry.path)
                    for entry in entries
                    if entry.name.endswith(SUFFIX) and entry.is_file(follow_symlinks=False)
                    for info in [entry.stat(follow_symlinks=False)]
                ]
        except OSError as err:
            logger.warning("could not list the cache folder %s: %s", self.folder, err)
            return
        total = sum(size for _, size, _ in found)
        for _, size, path in sorted(found):
            if total <= self.max_bytes:
                break
            try:
                os.unlink(path)
                total -= size
            except OSError as err:
                logger.warning("could not evict the cache entry %s: %s", path, err)


def _read_regular(path: Path, max_bytes: int) -> bytes | None:
    """The bytes of ``path`` if it is a regular file (not through a symlink) of at most ``max_bytes``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as err:  # a symlink (ELOOP), no permission
        logger.warning("ignoring the cache entry %s: %s", path, err)
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            logger.warning("ignoring the cache entry %s: not a regular file of at most %d bytes", path, max_bytes)
            return None
        chunks, remaining = [], max_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        return data if len(data) <= max_bytes else None
    except OSError as err:
        logger.warning("could not read the cache entry %s: %s", path, err)
        return None
    finally:
        os.close(fd)
