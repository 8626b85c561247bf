"""The run store: atomic files, safe ids, interrupted and corrupt runs reported per run."""

from __future__ import annotations

import json
import os
import time

import pytest
import torch
from safetensors.torch import save_file

from lab.config import RunConfig
from lab.runstore import RunStore, RunStoreError, write_json_atomic


def make_run(store: RunStore, **config) -> str:
    writer = store.create(RunConfig(**config))
    writer.write_metrics([{"epoch": 1, "test_acc": 0.5}])
    writer.save_features({"test_features": torch.randn(4, 2)})
    writer.set_status("finished", message="done", test_acc=0.5)
    return writer.run_id


def test_a_written_run_reads_back(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store, loss="softmax", experiment="exp-1")
    record = store.load(run_id)
    assert record.error is None and record.state == "finished"
    assert record.config == RunConfig(loss="softmax", experiment="exp-1")
    assert record.metrics == [{"epoch": 1, "test_acc": 0.5}]
    assert store.load_features(run_id)["test_features"].shape == (4, 2)
    assert list(store.experiments()) == ["exp-1"]
    summary = record.summary()
    assert summary["status"] == "finished" and summary["test_acc"] == 0.5 and summary["run_id"] == run_id


def test_run_ids_are_unique_and_leave_no_temporary_files(tmp_path):
    store = RunStore(tmp_path)
    ids = {make_run(store) for _ in range(3)}
    assert len(ids) == 3
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert not leftovers


@pytest.mark.parametrize("bad_id", ["../etc", "..", "/abs/path", "a/b", "", ".hidden", "x" * 200, None])
def test_run_ids_cannot_leave_the_runs_folder(tmp_path, bad_id):
    with pytest.raises(RunStoreError, match="not a valid run name"):
        RunStore(tmp_path).run_dir(bad_id)


def test_a_running_run_whose_process_is_gone_is_interrupted(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create(RunConfig())
    status = json.loads((writer.run_dir / "status.json").read_text())
    write_json_atomic(writer.run_dir / "status.json", {**status, "pid": 2**22 + 12345})
    assert store.load(writer.run_id).state == "interrupted"
    # our own process is alive: a run it writes is still running
    write_json_atomic(writer.run_dir / "status.json", {**status, "pid": os.getpid()})
    assert store.load(writer.run_id).state == "running"


def test_corrupt_files_are_reported_per_run_and_other_runs_still_load(tmp_path):
    store = RunStore(tmp_path)
    good = make_run(store)
    bad = make_run(store)
    (tmp_path / bad / "metrics.jsonl").write_text('{"epoch": 1, "test_')
    (tmp_path / bad / "features.safetensors").write_bytes(b"\x00garbage")
    records = {r.run_id: r for r in store.list()}
    assert records[good].error is None
    assert "metrics.jsonl is unreadable" in records[bad].error
    with pytest.raises(RunStoreError, match="not a valid safetensors file"):
        store.load_features(bad)


def test_a_config_with_unknown_fields_is_a_per_run_error(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store)
    path = tmp_path / run_id / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "extra": 1}))
    record = store.load(run_id)
    assert record.config is None and "unknown field extra" in record.error


def test_missing_weights_file_is_a_clear_error(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store)
    with pytest.raises(RunStoreError, match="weights.safetensors is missing"):
        store.load_weights(run_id)


def test_safetensors_files_load_without_unpickling(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store)
    save_file({"model.x": torch.ones(2)}, str(tmp_path / run_id / "weights.safetensors"))
    assert torch.equal(store.load_weights(run_id)["model.x"], torch.ones(2))


def test_folders_that_are_not_runs_are_ignored(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "stray.txt").write_text("hi")
    assert RunStore(tmp_path).list() == []
    assert RunStore(tmp_path / "absent").list() == []


def test_an_experiment_lists_its_runs_in_the_order_they_started_not_by_id(tmp_path):
    store = RunStore(tmp_path)
    first = make_run(store, loss="softmax", experiment="exp")
    second = make_run(store, loss="amc", experiment="exp")
    os.rename(tmp_path / first, tmp_path / "z-softmax")  # ids that sort the other way, like the shipped example's
    os.rename(tmp_path / second, tmp_path / "a-amc")
    broken = make_run(store, loss="opl", experiment="exp")
    status = json.loads((tmp_path / broken / "status.json").read_text())
    write_json_atomic(tmp_path / broken / "status.json", {**status, "started": "yesterday"})
    assert [r.run_id for r in store.experiments()["exp"]] == ["z-softmax", "a-amc", broken]


def test_experiments_come_newest_first_by_start_time_not_by_name(tmp_path):
    store = RunStore(tmp_path)
    make_run(store, loss="softmax", experiment="example-digits-2d")  # a name that sorts after any time stamp
    time.sleep(0.01)
    make_run(store, loss="softmax", experiment="20261201-120000-digits-2d")
    time.sleep(0.01)
    make_run(store, loss="amc", experiment="20261201-110000-digits-2d")  # an older name, started last
    unknown = make_run(store, loss="opl", experiment="no-start-time")
    status = json.loads((tmp_path / unknown / "status.json").read_text())
    write_json_atomic(tmp_path / unknown / "status.json", {**status, "started": None})
    assert list(store.experiments()) == [
        "20261201-110000-digits-2d",
        "20261201-120000-digits-2d",
        "example-digits-2d",
        "no-start-time",
    ]
