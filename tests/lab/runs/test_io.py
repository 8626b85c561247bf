"""Reading run files without trusting them: a FIFO, a link to /dev/zero, JSON nested too deeply, a number too
long and a file too big are each a run's problem, and an OS error says where and what to do."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest

from lab.runs import contents
from lab.runs.io import describe_os_error
from lab.runs.store import RunStore
from tests.conftest import ROOT
from tests.lab.runs.planting import edit_status, make_run


def test_lab_list_stays_up_with_a_fifo_a_dev_zero_link_and_deep_or_long_json(tmp_path):
    store = RunStore(tmp_path)
    good = make_run(store)
    fifo, zero, deep, digits, big = (make_run(store) for _ in range(5))
    (tmp_path / fifo / contents.STATUS).unlink()
    os.mkfifo(tmp_path / fifo / contents.STATUS)
    (tmp_path / zero / contents.STATUS).unlink()
    (tmp_path / zero / contents.STATUS).symlink_to("/dev/zero")
    (tmp_path / deep / contents.CONFIG).write_text("[" * 100_000 + "]" * 100_000)
    edit_status(store, digits, started=0)
    status = (tmp_path / digits / contents.STATUS).read_text().replace('"started": 0', '"started": ' + "9" * 400)
    (tmp_path / digits / contents.STATUS).write_text(status)
    (tmp_path / big / contents.STATUS).write_bytes(b" " * (contents.MAX_BYTES[contents.STATUS] + 1))

    result = subprocess.run(
        [sys.executable, "-m", "lab", "list", "--runs-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    listed = {line["run_id"]: line for line in map(json.loads, result.stdout.splitlines())}
    assert set(listed) == {good, fifo, zero, deep, digits, big}
    assert listed[good]["status"] == "finished" and listed[good]["message"] == "done"
    assert "status.json is not a plain file" in listed[fifo]["message"]
    assert "status.json is a symbolic link" in listed[zero]["message"]
    assert "config.json is unreadable" in listed[deep]["message"] and "nested too deeply" in listed[deep]["message"]
    assert "a number 400 characters long" in listed[digits]["message"]
    assert "more than the 1 MB a run's status.json may hold" in listed[big]["message"]


@pytest.mark.parametrize(
    ("code", "says"),
    [
        (errno.ENOSPC, "disk full at /x: free some space"),
        (errno.EROFS, "/x is on a read-only file system: choose a folder you can write to"),
        (errno.EACCES, "no permission to use /x: choose a folder you can read and write"),
        (errno.ENOTDIR, "/x is not a folder"),
        (errno.ENOENT, "/x does not exist"),
    ],
)
def test_os_errors_say_where_and_what_to_do(code, says):
    assert describe_os_error(OSError(code, os.strerror(code), "/x")).startswith(says)
