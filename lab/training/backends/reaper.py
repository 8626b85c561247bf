"""Ends the processes of a local Ray when the process that started it ends, however it ends.

``ray.init()`` without an address starts a local Ray (GCS, raylet, agents, workers) as descendants of the
driver. Ray ties some of them to the driver, but a driver killed with SIGKILL leaves its agents running
(about 160 MB). So a driver that starts a local Ray first starts this script as its own process, in its own
session, reading a pipe whose other end only the driver holds. While the pipe is open it notes the driver's
descendants every :data:`SCAN_SECONDS` (a process and its start time, so a reused pid is never mistaken for
one); once the pipe closes (the driver exited, or was killed) it ends those still there: SIGTERM, then
SIGKILL after a grace period (Ray's agents ignore SIGTERM).

It runs as a plain script (``python reaper.py DRIVER_PID``), importing nothing of LossLens, and reads
``/proc``; where there is no ``/proc`` it does nothing.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time

SCAN_SECONDS = 0.5
GRACE_SECONDS = 3.0

Process = tuple[int, int]  # (pid, start time in clock ticks since boot)


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of ``pid`` from /proc, or None when it is gone (or a zombie: it has ended)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text[text.rindex(b")") + 2 :].split()  # after "pid (name) ": the name may hold spaces
    return None if fields[0] == b"Z" else (int(fields[1]), int(fields[19]))


def descendants(root: int) -> set[Process]:
    """The processes below ``root`` now, each with its start time."""
    parents: dict[int, list[Process]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (found := _stat(int(name))) is not None:
            parents.setdefault(found[0], []).append((int(name), found[1]))
    below, todo = set(), [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in below:
                below.add(child)
                todo.append(child[0])
    return below


def alive(processes: set[Process]) -> set[Process]:
    return {(pid, start) for pid, start in processes if (found := _stat(pid)) is not None and found[1] == start}


def end(processes: set[Process]) -> None:
    """SIGTERM ``processes``, then SIGKILL those still there after :data:`GRACE_SECONDS`."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        left = alive(processes)
        for pid, _ in left:
            try:
                os.kill(pid, sent)
            except OSError:
                continue
        deadline = time.monotonic() + GRACE_SECONDS
        while left and sent == signal.SIGTERM and time.monotonic() < deadline:
            time.sleep(0.1)
            left = alive(left)
        if not left:
            return


def main() -> None:
    driver = int(sys.argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the driver must not end the reaper first
    watching = os.path.isdir("/proc")
    before = descendants(driver) if watching else set()  # this script, and whatever the driver ran before Ray
    os.write(sys.stdout.fileno(), b"watching\n")  # the driver starts Ray once this is read
    os.close(sys.stdout.fileno())
    seen: set[Process] = set()
    while True:
        if watching:
            seen |= descendants(driver) - before
        ready, _, _ = select.select([sys.stdin], [], [], SCAN_SECONDS)
        if ready and not os.read(sys.stdin.fileno(), 1 << 16):  # the driver's end of the pipe is closed
            break
    if watching:
        end({process for process in seen if process[0] != os.getpid()})


if __name__ == "__main__":
    main()
