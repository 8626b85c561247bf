"""Where runs train, and the Ray cluster behind an address: an address that is not a cluster is one error line
and never holds up its caller, and a killed driver leaves no local Ray running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lab.training import backends
from tests.conftest import ROOT, run_cli


def test_a_ray_address_that_is_not_a_cluster_is_one_error_line(tmp_path, silent_server):
    pytest.importorskip("ray")
    result = run_cli(
        "train", "--backend", "ray", "--ray-address", silent_server, "--runs-dir", str(tmp_path), timeout=120
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {silent_server} is not a Ray cluster: something listens there")
    assert list(tmp_path.iterdir()) == []


def test_asking_a_ray_address_that_does_not_answer_never_holds_up_the_caller(silent_server):
    pytest.importorskip("ray")
    answers: list[str] = []

    def ask() -> None:
        try:
            backends.cluster_resources(silent_server)
        except backends.BackendError as err:
            answers.append(str(err))

    for expected in ("still asking the Ray cluster", "is not a Ray cluster"):
        deadline = time.monotonic() + 30
        while not (answers and expected in answers[-1]):
            asked = threading.Thread(target=ask, daemon=True)
            asked.start()
            asked.join(5)
            assert not asked.is_alive(), "cluster_resources kept its caller waiting"
            assert time.monotonic() < deadline, answers
            time.sleep(0.5)


def _processes() -> dict[int, tuple[int, int, str]]:
    """Every live process: pid -> (parent pid, start time, name), from /proc."""
    found = {}
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            text = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue
        command, fields = text[text.index(b"(") + 1 : text.rindex(b")")], text[text.rindex(b")") + 2 :].split()
        if fields[0] != b"Z":  # a zombie has ended
            found[int(name)] = (int(fields[1]), int(fields[19]), command.decode(errors="replace"))
    return found


def _below(root: int) -> dict[tuple[int, int], str]:
    """The processes below ``root``: (pid, start time) -> name."""
    processes = _processes()
    below, todo = {}, [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, start, command) in processes.items():
            if ppid == parent and (pid, start) not in below:
                below[pid, start] = command
                todo.append(pid)
    return below


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds Ray's processes through /proc")
def test_a_killed_cli_driver_leaves_no_local_ray_running(tmp_path):
    pytest.importorskip("ray")
    env = {k: v for k, v in os.environ.items() if k != "LOSSLENS_RAY_ADDRESS"}
    args = ["train", "--backend", "ray", "--dataset", "digits", "--epochs", "50", "--runs-dir", str(tmp_path)]
    driver = subprocess.Popen(
        [sys.executable, "-m", "lab", *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    started: dict[tuple[int, int], str] = {}
    try:
        for line in driver.stderr:  # one line per epoch: Ray and its worker are up
            if b"epoch 1/50" in line:
                break
        started = _below(driver.pid)
        names = set(started.values())
        assert {"raylet", "gcs_server"} <= names and any(name.startswith("ray::") for name in names), names
        driver.kill()
        driver.wait(30)
        deadline = time.monotonic() + 60
        while left := {key: name for key, name in started.items() if _processes().get(key[0], (0, -1))[1] == key[1]}:
            assert time.monotonic() < deadline, f"Ray processes outlived their driver: {left}"
            time.sleep(0.5)
    finally:
        driver.kill()
        live = _processes()
        for pid, start in started:  # only on failure: stop what the test started
            if live.get(pid, (0, -1))[1] == start:
                os.kill(pid, signal.SIGKILL)
