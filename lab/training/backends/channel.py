"""The message channel between a Ray sweep's driver and its workers: one small Ray actor per sweep.

Workers ask it before they start a run (refused once the sweep is stopped), send their progress through
it (and learn from each send whether to stop), and the driver takes the messages in batches. Progress is
carried as opaque bytes and this module imports neither torch nor the trainer, so the actor starts in
moments and holds little memory.
"""

from __future__ import annotations

from typing import Any

import ray


@ray.remote(num_cpus=0)
class Channel:
    """Messages ``(kind, run index, payload)``: ``("start", i, (host, pid))`` when a worker begins run i
    (again on a retry), ``("progress", i, pickled Progress)`` as it trains."""

    def __init__(self) -> None:
        self._messages: list[tuple[str, int, Any]] = []
        self._stopped = False
        self._started: set[int] = set()

    def start(self, index: int, host: str, pid: int) -> bool:
        """Whether run ``index`` may start (False once stopped); records who trains it."""
        if self._stopped:
            return False
        self._started.add(index)
        self._messages.append(("start", index, (host, pid)))
        return True

    def put(self, index: int, payload: bytes) -> bool:
        """Queue one progress report of run ``index``; returns whether the sweep has been stopped."""
        self._messages.append(("progress", index, payload))
        return self._stopped

    def take(self) -> list[tuple[str, int, Any]]:
        """Every message queued since the last call, oldest first."""
        messages, self._messages = self._messages, []
        return messages

    def stop(self) -> list[int]:
        """Refuse every later start; returns the runs that had started (they stop at their next report)."""
        self._stopped = True
        return sorted(self._started)
