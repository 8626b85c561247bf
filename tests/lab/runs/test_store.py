"""The run store: atomic files, safe ids, interrupted and corrupt runs reported per run, run files
checked as they are read, and run folders written by earlier versions still readable."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import losses
import models
from lab.runs import contents, tensor_files
from lab.runs.io import write_json_atomic
from lab.runs.restore import load_trained
from lab.runs.store import RunStore, RunStoreError
from lab.runs.tensor_files import RunFeatures, RunSnapshots
from lab.settings.config import RunConfig

OLD_RUNS = Path(__file__).resolve().parents[2] / "fixtures" / "runs"  # written by LossLens before epoch 0 and images
OLD_RUN = "example-digits-2d-softmax"


PENULTIMATE = 128  # the width of the default model's penultimate layer on 8x8 digits


def tiny_features(n: int = 4, dim: int = 2, n_classes: int = 10) -> RunFeatures:
    """Features of a run of the default config (digits, 2-D), of ``n`` test images."""
    return RunFeatures(
        test_features=torch.randn(n, dim),
        test_labels=torch.arange(n) % n_classes,
        test_logits=torch.randn(n, n_classes),
        snapshot_indices=torch.tensor([0, 2]),
        penultimate=torch.randn(2, PENULTIMATE),
        class_directions=torch.randn(n_classes, dim),
        snapshot_images=torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8),
    )


def tiny_snapshots(epochs: int = 3, dim: int = 2, n_classes: int = 10) -> RunSnapshots:
    return RunSnapshots(
        indices=torch.tensor([0, 2]),
        features=torch.randn(epochs + 1, 2, dim),
        epochs=torch.arange(epochs + 1),
        class_directions=torch.randn(epochs + 1, n_classes, dim),
        test_acc=torch.rand(epochs + 1),
    )


def make_run(store: RunStore, **config) -> str:
    writer = store.create(RunConfig(**config))
    writer.write_metrics([{"epoch": 1, "test_acc": 0.5}])
    writer.save_features(tiny_features())
    writer.set_status("finished", message="done", test_acc=0.5)
    return writer.run_id


def test_a_written_run_reads_back(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store, loss="softmax", experiment="exp-1")
    record = store.load(run_id)
    assert record.error is None and record.state == "finished"
    assert record.config == RunConfig(loss="softmax", experiment="exp-1")
    assert record.metrics == [{"epoch": 1, "test_acc": 0.5}]
    assert store.load_features(run_id).test_features.shape == (4, 2)
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
    assert records[good].error is None and records[good].metrics == [{"epoch": 1, "test_acc": 0.5}]
    assert records[bad].metrics == [] and "metrics.jsonl is unreadable" in records[bad].error  # read when used
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
    model, head = models.build("small", 1, 8, 2), losses.build("softmax", 2, 10)
    saved = tensor_files.weights_to_tensors(model, head)
    save_file(saved, str(tmp_path / run_id / "weights.safetensors"))
    loaded = store.load_weights(run_id)
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)


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


# ---------------------------------------------------------------- run files


def test_features_and_snapshots_round_trip_through_the_store(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create(RunConfig())
    features, snapshots = tiny_features(), tiny_snapshots()
    writer.save_features(features)
    writer.save_snapshots(snapshots)
    loaded, history = store.load_features(writer.run_id), store.load_snapshots(writer.run_id)
    for field in dataclasses.fields(RunFeatures):
        assert torch.equal(getattr(loaded, field.name), getattr(features, field.name)), field.name
    for field in dataclasses.fields(RunSnapshots):
        assert torch.equal(getattr(history, field.name), getattr(snapshots, field.name)), field.name
    history.check_subset(loaded, writer.run_id)
    assert history.epochs.tolist() == [0, 1, 2, 3] and history.last_epoch == 3
    assert torch.equal(history.features[history.row(2)], snapshots.features[2])


def test_optional_tensors_may_be_absent():
    features = dataclasses.replace(tiny_features(), class_directions=None, snapshot_images=None)
    tensors = features.to_tensors()
    assert "class_directions" not in tensors and "snapshot_images" not in tensors
    again = RunFeatures.from_tensors(tensors)
    assert again.class_directions is None and again.snapshot_images is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"test_logits": torch.randn(5, 3)}, "test_logits has shape (5, 3): dimension 0 should be 4"),
        ({"test_labels": torch.tensor([0, 1, 2, 17])}, "test_labels must be classes 0..9"),
        ({"test_labels": torch.zeros(4)}, "test_labels should hold integers"),
        ({"snapshot_indices": torch.tensor([0, 9])}, "snapshot_indices must lie in 0..3"),
        ({"snapshot_indices": torch.tensor([1, 1])}, "snapshot_indices repeats an index"),
        ({"penultimate": torch.randn(3, 8)}, "penultimate has shape (3, 8): dimension 0 should be 2"),
        ({"class_directions": torch.randn(10, 5)}, "class_directions has shape (10, 5): dimension 1 should be 2"),
        ({"snapshot_images": torch.zeros(2, 1, 8, 8)}, "snapshot_images should be uint8"),
        ({"snapshot_images": torch.zeros(2, 8, 8, dtype=torch.uint8)}, "snapshot_images should have 4 dimensions"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_features_that_do_not_fit_together_are_refused_naming_the_run_and_file(tmp_path, change, message):
    store = RunStore(tmp_path)
    writer = store.create(RunConfig())
    bad = dataclasses.replace(tiny_features(), **change)
    with pytest.raises(RunStoreError, match=f"run {writer.run_id}: features.safetensors: {re.escape(message)}"):
        writer.save_features(bad)  # the writer checks before writing
    tensors = {f.name: getattr(bad, f.name) for f in dataclasses.fields(bad)}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(writer.run_dir / contents.FEATURES))
    with pytest.raises(RunStoreError, match=f"run {writer.run_id}: features.safetensors: {re.escape(message)}"):
        store.load_features(writer.run_id)  # and so does the reader, for files written some other way


def test_a_features_file_without_a_required_tensor_names_it(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create(RunConfig())
    tensors = tiny_features().to_tensors()
    del tensors["penultimate"]
    save_file(tensors, str(writer.run_dir / contents.FEATURES))
    with pytest.raises(RunStoreError, match="features.safetensors: has no 'penultimate' tensor"):
        store.load_features(writer.run_id)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"features": torch.randn(4, 3, 2)}, "features has shape (4, 3, 2): dimension 1 should be 2"),
        ({"epochs": torch.tensor([0, 1, 1, 2])}, "epochs must increase"),
        ({"epochs": torch.arange(3)}, "epochs has shape (3,): dimension 0 should be 4"),
        ({"class_directions": torch.randn(4, 10, 5)}, "class_directions has shape (4, 10, 5): dimension 2 should be 2"),
        ({"test_acc": torch.rand(2)}, "test_acc has shape (2,): dimension 0 should be 4"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_snapshots_that_do_not_fit_together_are_refused(tmp_path, change, message):
    store = RunStore(tmp_path)
    writer = store.create(RunConfig())
    with pytest.raises(RunStoreError, match=f"run {writer.run_id}: snapshots.safetensors: {re.escape(message)}"):
        writer.save_snapshots(dataclasses.replace(tiny_snapshots(), **change))


def test_snapshots_of_another_subset_than_the_features_are_refused():
    snapshots = dataclasses.replace(tiny_snapshots(), indices=torch.tensor([1, 2]))
    with pytest.raises(RunStoreError, match="run r: snapshots.safetensors: indices are not the snapshot_indices"):
        snapshots.check_subset(tiny_features(), "r")


def test_snapshots_written_before_epoch_zero_start_at_epoch_one():
    old = RunSnapshots.from_tensors({"indices": torch.tensor([0, 2]), "features": torch.randn(3, 2, 2)})
    assert old.epochs.tolist() == [1, 2, 3] and old.class_directions is None and old.test_acc is None
    assert old.row(1) == 0
    with pytest.raises(KeyError, match="epoch 0 is not among the stored epochs"):
        old.row(0)


def test_a_run_folder_written_by_an_earlier_version_still_loads(tmp_path):
    shutil.copytree(OLD_RUNS, tmp_path, dirs_exist_ok=True)
    store = RunStore(tmp_path)
    record = store.load(OLD_RUN)
    assert record.error is None and record.state == "finished" and record.config.loss == "softmax"
    features = store.load_features(OLD_RUN)
    assert features.snapshot_images is None and features.class_directions.shape == (10, 2)
    assert features.test_features.shape == (360, 2) and len(features.snapshot_indices) == 360
    snapshots = store.load_snapshots(OLD_RUN)
    snapshots.check_subset(features, OLD_RUN)
    assert snapshots.epochs.tolist() == list(range(1, 13)) and snapshots.class_directions is None
    model, head = load_trained(store, record)
    with torch.inference_mode():
        logits = head.logits(model(torch.zeros(2, 1, 8, 8)))
    assert logits.shape == (2, 10)


# ---------------------------------------------------------------- partial writes


def _leftover(run_dir: Path, age_seconds: float) -> Path:
    path = run_dir / f".{contents.FEATURES}.abc123.tmp"
    path.write_bytes(b"half a file")
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    return path


def test_an_interrupted_runs_partial_writes_are_deleted_when_it_is_read(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create(RunConfig())
    status = json.loads((writer.run_dir / contents.STATUS).read_text())
    write_json_atomic(writer.run_dir / contents.STATUS, {**status, "pid": 2**22 + 12345})  # a writer that is gone
    stale, fresh = _leftover(writer.run_dir, 3600), _leftover(writer.run_dir, 0)
    fresh = fresh.rename(fresh.with_name(f".{contents.STATUS}.def456.tmp"))
    assert [r.state for r in store.list()] == ["interrupted"]
    assert not stale.exists() and not fresh.exists(), "the writer was on this host and has ended: all are leftovers"
    assert (writer.run_dir / contents.CONFIG).exists()


def test_only_stale_partial_writes_go_when_the_writer_was_on_another_host(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create(RunConfig())
    status = json.loads((writer.run_dir / contents.STATUS).read_text())
    write_json_atomic(writer.run_dir / contents.STATUS, {**status, "host": "another-machine"})
    stale, fresh = _leftover(writer.run_dir, 3600), _leftover(writer.run_dir, 0)
    fresh = fresh.rename(fresh.with_name(f".{contents.STATUS}.def456.tmp"))
    assert [r.state for r in store.list()] == ["elsewhere"]
    assert not stale.exists(), "a partial write an hour old is a leftover"
    assert fresh.exists(), "a partial write from the last minute may belong to the writer on the other host"


def test_a_live_writers_partial_writes_are_kept(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create(RunConfig())  # this process is the writer, and it is alive
    old = _leftover(writer.run_dir, 3600)
    assert store.load(writer.run_id).state == "running"
    assert old.exists()
