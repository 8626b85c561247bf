"""The server's memo of its own computations: bounded, least recently used dropped first, and each entry
computed once when two sessions ask for it at the same time."""

from __future__ import annotations

import threading
import time

import pytest

from ui.memo import ServerMemo


def test_keeps_at_most_its_size_dropping_the_least_recently_used():
    memo: ServerMemo[int] = ServerMemo(2)
    memo.put("a", 1)
    memo.put("b", 2)
    assert memo.get("a") == 1  # "b" is now the least recently used
    memo.put("c", 3)
    assert memo.get("b") is None and memo.get("a") == 1 and memo.get("c") == 3


def test_two_sessions_asking_at_once_compute_once():
    memo: ServerMemo[str] = ServerMemo(4)
    calls = []
    started = threading.Event()

    def slow() -> str:
        calls.append(threading.current_thread().name)
        started.set()
        time.sleep(0.3)
        return "umap"

    results = []
    first = threading.Thread(target=lambda: results.append(memo.compute("k", slow)), name="first")
    first.start()
    started.wait(5)
    second = threading.Thread(target=lambda: results.append(memo.compute("k", slow)), name="second")
    second.start()
    first.join(5)
    second.join(5)
    assert results == ["umap", "umap"] and calls == ["first"]


def test_a_failed_computation_keeps_nothing_and_the_next_one_runs():
    memo: ServerMemo[int] = ServerMemo(4)

    def failing() -> int:
        raise ValueError("no images")

    with pytest.raises(ValueError, match="no images"):
        memo.compute("k", failing)
    assert memo.get("k") is None
    assert memo.compute("k", lambda: 7) == 7
