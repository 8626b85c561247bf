"""Writing a run when the disk fills: a failed write is retried once and the last good status kept, a run
whose disk fills ends failed and can be deleted, creating a run leaves no half-made folder, runs created
while the disk fills never train, and safetensors' own full-disk error is a write error."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from safetensors import SafetensorError

from lab.runs import contents
from lab.runs import io as run_io
from lab.runs import store as runstore
from lab.runs import writer as run_writer
from lab.runs.io import RunWriteError
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.settings.experiment import make_experiment
from lab.training.loop import train_experiment, train_run
from tests.lab.runs.planting import OWNER, TINY, full_disk


def test_a_failed_status_write_is_retried_once_and_the_last_good_status_is_kept(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    writer = store.create(RunConfig(), owner=OWNER)
    writer.set_status("running", message="epoch 1 of 2", epoch=1)
    attempts = full_disk(monkeypatch)
    with pytest.raises(RunWriteError, match=f"disk full at {writer.run_dir}"):
        writer.set_status("running", message="epoch 2 of 2", epoch=2)
    assert attempts["writes"] == 2
    on_disk = json.loads((writer.run_dir / contents.STATUS).read_text())
    assert on_disk["epoch"] == 1 and on_disk["owner"] == OWNER
    record = store.load(writer.run_id)
    assert record.state == "failed" and record.message.startswith(f"disk full at {writer.run_dir}")


def test_a_run_whose_disk_fills_up_ends_failed_and_can_be_deleted(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    reports = []
    real_write = run_io.write_atomic

    def fill_after_the_first_epoch(path, data):
        if path.name == contents.METRICS:  # the end of epoch 1: from here on, nothing can be written
            full_disk(monkeypatch)
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, data)

    for module in (run_io, runstore, run_writer):
        monkeypatch.setattr(module, "write_atomic", fill_after_the_first_epoch)
    record = train_run(RunConfig(experiment="full", **TINY), store, owner=OWNER, on_progress=reports.append)
    assert record.state == "failed" and record.message == f"disk full at {record.run_dir}: " + (
        "free some space or choose a folder on another disk"
    )
    assert json.loads((record.run_dir / contents.STATUS).read_text())["status"] == "running", "the stale file"
    assert (reports[-1].status, reports[-1].message) == ("failed", record.message)
    monkeypatch.undo()
    assert store.delete_experiment("full", OWNER) == 1 and store.list() == []


def test_creating_a_run_on_a_full_disk_leaves_no_half_made_folder(tmp_path, monkeypatch):
    full_disk(monkeypatch)
    with pytest.raises(RunWriteError, match=f"cannot create a run: disk full at {tmp_path}"):
        RunStore(tmp_path).create(RunConfig(), owner=OWNER)
    assert list(tmp_path.iterdir()) == []


def test_a_disk_that_fills_while_runs_are_created_leaves_no_run_training(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    real = run_io.write_atomic
    writes = []

    def fill_at_the_second_run(path: Path, data: bytes) -> None:
        writes.append(path)
        if len({p.parent for p in writes}) > 1:  # the second run's folder: the disk is full from here on
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    for module in (run_io, runstore, run_writer):
        monkeypatch.setattr(module, "write_atomic", fill_at_the_second_run)
    configs = make_experiment(RunConfig(experiment="filling", **TINY), ["softmax", "amc", "opl"])
    with pytest.raises(RunWriteError, match="disk full"):
        train_experiment(configs, store, owner=OWNER)
    monkeypatch.undo()
    assert [r.state for r in store.list() if r.state in runstore.ACTIVE_STATES] == []
    assert list(tmp_path.iterdir()) == [], "runs that never trained are removed"


def test_a_full_disk_under_safetensors_is_a_write_error_retried_once_without_a_traceback(tmp_path, monkeypatch, caplog):
    attempts = []

    def full(tensors, filename, metadata=None):  # how safetensors reports ENOSPC: its own error, the errno in text
        attempts.append(filename)
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(run_io, "save_file", full)
    record = train_run(RunConfig(**TINY), RunStore(tmp_path))
    assert record.state == "failed"
    assert record.message == f"disk full at {record.run_dir}: free some space or choose a folder on another disk"
    assert len(attempts) == 2, "the write is tried once more"
    assert not [r for r in caplog.records if r.exc_info], "a full disk is logged as a message, not a traceback"
