"""The safetensors files of a run: checked against the run's config (from the header alone where it can be)
with the run and file named, read without a copy of the file, half precision read as float32, NaN weights
refused; weights loaded without unpickling, features and snapshots that round-trip or do not fit together,
and files written by earlier versions still read."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import tracemalloc

import pytest
import torch
from safetensors.torch import save_file

import losses
import models
from lab.cli.main import main
from lab.runs import contents, tensor_files
from lab.runs import store as runstore
from lab.runs.restore import load_trained
from lab.runs.store import RunStore, RunStoreError
from lab.runs.tensor_files import RunFeatures, RunSnapshots
from lab.settings.config import RunConfig
from lab.training.loop import train_run
from tests.lab.runs.planting import CLASSES, DIM, OLD_RUN, OLD_RUNS, SUBSET, TINY, N, features, make_run, plant, rewrite, snapshots, tiny_features, tiny_snapshots

# ---------------------------------------------------------------- run files checked against the config


@pytest.mark.parametrize(
    ("filename", "change", "message"),
    [
        (
            contents.FEATURES,
            {"test_features": torch.randn(N, 3), "class_directions": torch.randn(CLASSES, 3)},
            "test_features has shape (40, 3): dimension 1 should be 2, the run's feature dimension",
        ),
        (
            contents.FEATURES,
            {"test_logits": torch.randn(N, 5), "class_directions": torch.randn(5, DIM)},
            "test_logits has shape (40, 5): dimension 1 should be 10, the classes of digits",
        ),
        (
            contents.FEATURES,
            {"snapshot_images": torch.zeros(SUBSET, 3, 8, 8, dtype=torch.uint8)},
            "snapshot_images has shape (10, 3, 8, 8): dimension 1 should be 1, the channels of digits",
        ),
        (
            contents.FEATURES,
            {"snapshot_images": torch.zeros(SUBSET, 1, 28, 28, dtype=torch.uint8)},
            "dimension 2 should be 8, as digits's images are",
        ),
        (contents.FEATURES, {"penultimate": torch.randn(SUBSET, 64)}, "should be 128, the small model's width"),
        (contents.FEATURES, {"test_features": torch.full((N, DIM), float("nan"))}, "test_features holds NaN"),
        (contents.FEATURES, {"test_logits": torch.full((N, CLASSES), float("inf"))}, "test_logits holds NaN"),
        (contents.FEATURES, {"test_features": torch.ones(N, DIM, dtype=torch.int64)}, "should hold floating"),
        (contents.SNAPSHOTS, {"features": torch.randn(0, SUBSET, DIM), "epochs": torch.arange(0)}, "holds no epochs"),
        (
            contents.SNAPSHOTS,
            {"features": torch.randn(4, SUBSET, DIM), "epochs": torch.arange(4), "test_acc": torch.rand(4)},
            "features holds 4 epochs, more than the run's 2 epochs and the one before training",
        ),
        (contents.SNAPSHOTS, {"epochs": torch.tensor([0, 1, 70000])}, "epochs must lie in 0..2"),
        (contents.SNAPSHOTS, {"features": torch.randn(3, SUBSET, 3)}, "dimension 2 should be 2, the run's feature"),
        (contents.SNAPSHOTS, {"test_acc": torch.tensor([0.1, float("nan"), 0.3])}, "test_acc holds NaN"),
    ],
    ids=lambda value: value if isinstance(value, str) and " " in value else None,
)
def test_run_files_that_disagree_with_their_config_are_a_per_run_message(tmp_path, filename, change, message):
    store = RunStore(tmp_path)
    good, bad = plant(store), plant(store)
    base = features() if filename == contents.FEATURES else snapshots()
    rewrite(store, bad, filename, {**base, **change})
    load = store.load_features if filename == contents.FEATURES else store.load_snapshots
    with pytest.raises(RunStoreError) as raised:
        load(bad)
    assert str(raised.value).startswith(f"run {bad}: {filename}: ") and message in str(raised.value)
    load(good)  # the other run still loads


def test_a_snapshots_file_far_beyond_its_config_is_refused_from_its_header_alone(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    run_id = plant(store)
    frames = 72_817  # the filed file: a 2-epoch run holding this many stored epochs
    rewrite(store, run_id, contents.SNAPSHOTS, snapshots(rows=frames))
    read = []
    real = runstore.read_tensor
    monkeypatch.setattr(runstore, "read_tensor", lambda fd, header, name: read.append(name) or real(fd, header, name))
    with pytest.raises(RunStoreError, match=f"features holds {frames} epochs, more than the run's 2 epochs"):
        store.load_snapshots(run_id)
    assert read == [], "no tensor of the file was read"
    store.load_features(run_id)
    assert read, "a file that fits is read"


def test_reading_a_run_file_holds_no_copy_of_the_file_beside_its_tensors(tmp_path):
    store = RunStore(tmp_path)
    run_id = plant(store, epochs=200, snapshot_points=2000, feat_dim=16)
    rewrite(store, run_id, contents.SNAPSHOTS, snapshots(rows=201, subset=2000, dim=16))
    assert (store.run_dir(run_id) / contents.SNAPSHOTS).stat().st_size > 24 * 2**20
    for _ in range(2):  # the second time: what the first call imports is not counted
        tracemalloc.start()
        loaded = store.load_snapshots(run_id)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert loaded.features.shape == (201, 2000, 16)
    assert peak < 4 * 2**20, f"reading held {peak / 2**20:.0f} MB of Python objects (the file's bytes)"


def test_half_precision_features_read_as_float32_and_a_summary_uses_them(tmp_path, capsys):
    store = RunStore(tmp_path)
    halves = {}
    for seed, dtype in enumerate((torch.bfloat16, torch.float16)):
        run_id = plant(store, seed=seed)
        tensors = features(seed)
        for name in ("test_features", "test_logits", "penultimate", "class_directions"):
            tensors[name] = tensors[name].to(dtype)
        rewrite(store, run_id, contents.FEATURES, tensors)
        halves[run_id] = tensors
    for run_id, tensors in halves.items():
        loaded = store.load_features(run_id)
        assert loaded.test_features.dtype == torch.float32 == loaded.test_logits.dtype
        assert torch.equal(loaded.test_features, tensors["test_features"].float())
    assert main(["summary", "exp", "--runs-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    line = json.loads(captured.out)
    assert line["n"] == 2 and line["left_out"] == [] and "Traceback" not in captured.err


def test_nan_weights_are_refused_with_the_tensor_named(tmp_path):
    store = RunStore(tmp_path)
    record = train_run(RunConfig(**TINY), store)
    weights = store.load_weights(record.run_id)
    weights["model.feature.0.weight"] = torch.full_like(weights["model.feature.0.weight"], float("nan"))
    rewrite(store, record.run_id, contents.WEIGHTS, weights)
    with pytest.raises(RunStoreError, match="weights.safetensors: model.feature.0.weight holds NaN or infinite"):
        load_trained(store, store.load(record.run_id))
    weights["model.feature.0.weight"] = torch.zeros(2, 64)  # another model's shape
    rewrite(store, record.run_id, contents.WEIGHTS, weights)
    with pytest.raises(RunStoreError, match=r"model.feature.0.weight has shape \(2, 64\): the small model"):
        store.load_weights(record.run_id)


# ---------------------------------------------------------------- round trips, tensors that fit together, and older files


def test_safetensors_files_load_without_unpickling(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store)
    model, head = models.build("small", 1, 8, 2), losses.build("softmax", 2, 10)
    saved = tensor_files.weights_to_tensors(model, head)
    save_file(saved, str(tmp_path / run_id / "weights.safetensors"))
    loaded = store.load_weights(run_id)
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)


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
