"""What the server keeps of its own computations, shared by every session: a bounded memo, least
recently used dropped first, that computes each entry once even when sessions ask for it at once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Value = TypeVar("Value")


class ServerMemo(Generic[Value]):
    """At most ``size`` values by key. :meth:`compute` makes a missing value while holding that key's
    own lock, so a second session asking for it waits and gets the first one's result instead of
    computing it again; other keys go on meanwhile."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: dict[Hashable, Value] = {}
        self._making: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Value | None:
        """The value kept under ``key`` (now the most recently used), or None."""
        with self._lock:
            if key not in self._values:
                return None
            value = self._values[key] = self._values.pop(key)
            return value

    def put(self, key: Hashable, value: Value) -> None:
        with self._lock:
            self._values.pop(key, None)
            self._values[key] = value
            while len(self._values) > self.size:
                self._values.pop(next(iter(self._values)))

    def compute(self, key: Hashable, make: Callable[[], Value]) -> Value:
        """The value under ``key``, made by ``make()`` and kept when it is missing."""
        found = self.get(key)
        if found is not None:
            return found
        with self._lock:
            making = self._making.setdefault(key, threading.Lock())
        try:
            with making:
                found = self.get(key)  # made by the session this one waited for
                if found is None:
                    found = make()
                    self.put(key, found)
                return found
        finally:
            with self._lock:
                self._making.pop(key, None)
