"""Exports of a real tiny run: the run zip restores the model and never holds the owner; the projector bundle
is in the exact format; the export command streams the run files, refuses files that disagree with their
config, and names the file when its folder is full."""

from __future__ import annotations

import dataclasses
import errno
import io
import json
import logging
import math
import os
import posixpath
import shutil
import tracemalloc
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file

import losses
import models
from lab.cli.main import main
from lab.datasets import load_dataset
from lab.reports import export
from lab.runs import contents
from lab.runs.restore import load_trained
from lab.runs.store import RunStore, RunStoreError
from lab.settings.config import RunConfig
from lab.training.loop import train_run
from tests.lab.runs.planting import OLD_RUN, OLD_RUNS, OWNER, TINY, plant, rewrite, snapshots


def _unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def _accuracy(model: torch.nn.Module, head: torch.nn.Module, split) -> float:
    with torch.no_grad():
        return float((head.logits(model(split.normalized)).argmax(1) == split.labels).float().mean())


def test_run_zip_holds_the_run_files_and_a_readme(digits_run):
    store, record, _ = digits_run
    files = _unzip(export.run_zip(store, record.run_id))
    names = {
        "config.json",
        "status.json",
        "metrics.jsonl",
        "weights.safetensors",
        "features.safetensors",
        "snapshots.safetensors",
        "README.txt",
    }
    assert set(files) == {f"{record.run_id}/{name}" for name in names}
    config = json.loads(files[f"{record.run_id}/config.json"])
    assert RunConfig.from_dict(config) == record.config
    status = json.loads(files[f"{record.run_id}/status.json"])
    assert status["status"] == "finished" and "pid" not in status and "host" not in status
    assert len(files[f"{record.run_id}/metrics.jsonl"].decode().splitlines()) == 3
    readme = files[f"{record.run_id}/README.txt"].decode()
    assert "load_file" in readme and "weights.safetensors" in readme and "snapshots.safetensors" in readme


def test_run_zip_weights_load_with_safetensors_and_reproduce_the_test_accuracy(digits_run):
    store, record, digits = digits_run
    files = _unzip(export.run_zip(store, record.run_id))
    config = RunConfig.from_dict(json.loads(files[f"{record.run_id}/config.json"]))
    tensors = load_safetensors(files[f"{record.run_id}/weights.safetensors"])
    model = models.build(config.model, digits.in_channels, digits.image_size, config.feat_dim)
    head = losses.build(config.loss, config.feat_dim, digits.n_classes, **config.loss_params)
    model.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
    head.load_state_dict({k.removeprefix("head."): v for k, v in tensors.items() if k.startswith("head.")})
    assert _accuracy(model.eval(), head.eval(), digits.test) == pytest.approx(record.status["test_acc"], abs=1e-6)


def test_run_zip_unzipped_into_a_runs_folder_is_a_loadable_run(digits_run, tmp_path):
    store, record, digits = digits_run
    with zipfile.ZipFile(io.BytesIO(export.run_zip(store, record.run_id))) as archive:
        archive.extractall(tmp_path)
    restored = RunStore(tmp_path)
    copy = restored.load(record.run_id)
    assert copy.error is None and copy.state == "finished"
    model, head = load_trained(restored, copy, digits)
    assert _accuracy(model, head, digits.test) == pytest.approx(record.status["test_acc"], abs=1e-6)


def test_run_zip_of_an_unknown_run_is_refused(digits_run):
    store, _, _ = digits_run
    with pytest.raises(RunStoreError):
        export.run_zip(store, "no-such-run")


@pytest.fixture(scope="module")
def bundle(digits_run):
    store, record, digits = digits_run
    files = _unzip(export.projector_bundle(store, record.run_id, digits))
    folder = f"{record.run_id}-projector/"
    assert all(name.startswith(folder) for name in files)
    return {name.removeprefix(folder): data for name, data in files.items()}


def test_projector_bundle_has_the_expected_files(bundle):
    assert set(bundle) == {
        "tensors.tsv",
        "metadata.tsv",
        "sprite.png",
        "penultimate.tsv",
        "penultimate_metadata.tsv",
        "penultimate_sprite.png",
        "projector_config.json",
        "README.txt",
    }
    assert "Sphereize" in bundle["README.txt"].decode()


def test_tensors_tsv_is_unit_vectors_one_per_line_without_a_header(digits_run, bundle):
    store, record, digits = digits_run
    text = bundle["tensors.tsv"].decode()
    assert text.endswith("\n") and not text.endswith("\n\n")
    rows = [[float(v) for v in line.split("\t")] for line in text.splitlines()]
    vectors = np.array(rows)
    assert vectors.shape == (len(digits.test), record.config.feat_dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    features = store.load_features(record.run_id).test_features.double().numpy()
    expected = features / np.linalg.norm(features, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)


def test_metadata_tsv_has_a_header_and_one_row_per_vector(digits_run, bundle):
    store, record, digits = digits_run
    lines = bundle["metadata.tsv"].decode().splitlines()
    assert len(lines) == len(digits.test) + 1
    assert lines[0].split("\t") == list(export.METADATA_COLUMNS)
    rows = [dict(zip(export.METADATA_COLUMNS, line.split("\t"), strict=True)) for line in lines[1:]]
    saved = store.load_features(record.run_id)
    predicted = saved.test_logits.argmax(1).tolist()
    assert [int(r["index"]) for r in rows] == list(range(len(digits.test)))
    assert [int(r["label"]) for r in rows] == digits.test.labels.tolist()
    assert [int(r["predicted"]) for r in rows] == predicted
    assert all(r["correct"] == ("true" if r["label"] == r["predicted"] else "false") for r in rows)
    assert {r["loss"] for r in rows} == {"softmax"}
    assert rows[0]["label_name"] == digits.class_names[int(rows[0]["label"])]
    feature, direction = saved.test_features[0].double(), saved.class_directions[int(rows[0]["label"])].double()
    angle = math.degrees(math.acos(float(feature @ direction / (feature.norm() * direction.norm()))))
    assert float(rows[0]["angle_to_own_class_deg"]) == pytest.approx(angle, abs=1e-3)
    assert all(0.0 <= float(r["angle_to_own_class_deg"]) <= 180.0 for r in rows)


def test_projector_config_points_at_files_in_the_bundle(bundle):
    config = json.loads(bundle["projector_config.json"])
    assert len(config["embeddings"]) == 2
    for embedding in config["embeddings"]:
        assert set(embedding) >= {"tensorName", "tensorShape", "tensorPath", "metadataPath", "sprite"}
        for path in (embedding["tensorPath"], embedding["metadataPath"], embedding["sprite"]["imagePath"]):
            assert posixpath.normpath(path) in bundle
        n, dim = embedding["tensorShape"]
        tensor_lines = bundle[embedding["tensorPath"]].decode().splitlines()
        assert len(tensor_lines) == n and all(len(line.split("\t")) == dim for line in tensor_lines)
        assert len(bundle[embedding["metadataPath"]].decode().splitlines()) == n + 1
        sprite = Image.open(io.BytesIO(bundle[embedding["sprite"]["imagePath"]]))
        width, height = embedding["sprite"]["singleImageDim"]
        columns = math.ceil(math.sqrt(n))
        assert sprite.size == (columns * width, math.ceil(n / columns) * height)


def test_sprite_holds_the_test_images_in_row_major_order(digits_run, bundle):
    _, _, digits = digits_run
    config = json.loads(bundle["projector_config.json"])
    width, height = config["embeddings"][0]["sprite"]["singleImageDim"]
    factor = width // digits.image_size
    sheet = np.asarray(Image.open(io.BytesIO(bundle["sprite.png"])))
    columns = sheet.shape[1] // width
    for index in (0, 1, columns, len(digits.test) - 1):
        r, c = divmod(index, columns)
        thumb = sheet[r * height : (r + 1) * height : factor, c * width : (c + 1) * width : factor]
        np.testing.assert_array_equal(thumb, digits.test.images[index, 0].numpy())


def test_penultimate_tensor_covers_the_snapshot_subset(digits_run, bundle):
    store, record, _ = digits_run
    saved = store.load_features(record.run_id)
    rows = bundle["penultimate.tsv"].decode().splitlines()
    assert len(rows) == len(saved.snapshot_indices)
    np.testing.assert_allclose(
        np.array([[float(v) for v in r.split("\t")] for r in rows]), saved.penultimate, rtol=1e-6
    )
    metadata = bundle["penultimate_metadata.tsv"].decode().splitlines()
    assert [int(line.split("\t")[0]) for line in metadata[1:]] == saved.snapshot_indices.tolist()


def test_without_class_directions_the_angle_is_to_the_class_mean(digits_run, tmp_path):
    store, record, digits = digits_run
    shutil.copytree(record.run_dir, tmp_path / record.run_id)
    copy = RunStore(tmp_path)
    saved = dataclasses.replace(copy.load_features(record.run_id), class_directions=None)
    save_file(saved.to_tensors(), str(tmp_path / record.run_id / "features.safetensors"))
    files = _unzip(export.projector_bundle(copy, record.run_id, digits))
    folder = f"{record.run_id}-projector/"
    assert "mean normalised test feature" in files[folder + "README.txt"].decode()
    row = files[folder + "metadata.tsv"].decode().splitlines()[1].split("\t")
    unit = torch.nn.functional.normalize(saved.test_features.double(), dim=1)
    mean = unit[saved.test_labels == int(row[1])].mean(0)
    angle = math.degrees(math.acos(float(unit[0] @ mean / mean.norm())))
    assert float(row[5]) == pytest.approx(angle, abs=1e-3)


def test_projector_bundle_refuses_a_different_dataset(digits_run):
    store, record, digits = digits_run
    with pytest.raises(RunStoreError, match="trained on digits"):
        export.projector_bundle(store, record.run_id, dataclasses.replace(digits, name="mnist"))


def test_a_run_folder_written_by_an_earlier_version_exports(tmp_path):
    shutil.copytree(OLD_RUNS, tmp_path, dirs_exist_ok=True)
    store = RunStore(tmp_path)
    files = _unzip(export.run_zip(store, OLD_RUN))
    assert set(files) == {f"{OLD_RUN}/{name}" for name in (*contents.FILES, "README.txt")}
    readme = files[f"{OLD_RUN}/README.txt"].decode()
    assert all(contents.FILES[name] in " ".join(readme.split()) for name in contents.FILES)
    bundle = _unzip(export.projector_bundle(store, OLD_RUN, load_dataset("digits")))
    metadata = bundle[f"{OLD_RUN}-projector/metadata.tsv"].decode().splitlines()
    assert len(metadata) == 1 + 360 and "class direction" in bundle[f"{OLD_RUN}-projector/README.txt"].decode()


# ---------------------------------------------------------------- python -m lab export


@pytest.mark.parametrize("flag", ["--zip", "--projector"])
def test_the_export_command_writes_the_compare_pages_bundles(digits_run, tmp_path, capsys, flag):
    store, record, digits = digits_run
    out = tmp_path / "bundle.zip"
    assert main(["export", record.run_id, "--runs-dir", str(store.root), flag, str(out)]) == 0
    expected = (
        export.run_zip(store, record.run_id)
        if flag == "--zip"
        else export.projector_bundle(store, record.run_id, digits)
    )
    assert out.read_bytes() == expected
    assert [p.name for p in tmp_path.iterdir()] == ["bundle.zip"], "written through a temporary file, renamed"
    line = json.loads(capsys.readouterr().out)
    assert line == {"run_id": record.run_id, "kind": flag[2:], "path": str(out), "bytes": len(expected)}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-run", "--zip", "out.zip"], "run 'no-such-run' not found"),
        (["x\n", "--zip", "out.zip"], "is not a valid run name"),
        (["RUN", "--zip", "a.zip", "--projector", "b.zip"], "not allowed with argument"),
        (["RUN"], "one of the arguments --zip --projector is required"),
        (["RUN", "--zip", "missing-folder/out.zip"], "missing-folder is not a folder: create it first"),
    ],
)
def test_the_export_command_refuses_with_one_line(digits_run, tmp_path, capsys, monkeypatch, args, message):
    store, record, _ = digits_run
    monkeypatch.chdir(tmp_path)
    args = [record.run_id if arg == "RUN" else arg for arg in args]
    assert main(["export", *args, "--runs-dir", str(store.root)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: ") and message in captured.err, captured.err
    assert len(captured.err.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


def test_an_export_streams_the_run_files_instead_of_holding_them(tmp_path):
    store = RunStore(tmp_path / "runs")
    run_id = plant(store, epochs=200, snapshot_points=2000, feat_dim=16)
    rewrite(store, run_id, contents.SNAPSHOTS, snapshots(rows=201, subset=2000, dim=16))
    size = (store.run_dir(run_id) / contents.SNAPSHOTS).stat().st_size
    out = tmp_path / "run.zip"
    tracemalloc.start()
    assert main(["export", run_id, "--runs-dir", str(store.root), "--zip", str(out)]) == 0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert size > 24 * 2**20 and peak < 8 * 2**20, f"exporting a {size / 2**20:.0f} MB file held {peak / 2**20:.0f} MB"
    assert out.read_bytes() == export.run_zip(store, run_id)


def test_an_export_of_a_run_whose_files_disagree_with_its_config_is_refused(tmp_path, capsys):
    store = RunStore(tmp_path)
    run_id = plant(store)
    rewrite(store, run_id, contents.SNAPSHOTS, snapshots(rows=500))
    assert main(["export", run_id, "--runs-dir", str(tmp_path), "--zip", str(tmp_path / "run.zip")]) == 2
    assert "features holds 500 epochs" in capsys.readouterr().err and not (tmp_path / "run.zip").exists()


def test_an_export_into_a_full_folder_names_the_file(tmp_path, monkeypatch, capsys):
    store = RunStore(tmp_path / "runs")
    run_id = plant(store)
    out = tmp_path / "out.zip"

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert main(["export", run_id, "--runs-dir", str(store.root), "--zip", str(out)]) == 2
    assert capsys.readouterr().err == f"error: disk full at {out}: free some space or choose a folder on another disk\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"], "no partial file is left"


# ---------------------------------------------------------------- the owner stays on this server


def test_an_export_and_the_logs_never_hold_the_owner(tmp_path, caplog):
    store = RunStore(tmp_path)
    with caplog.at_level(logging.DEBUG):
        record = train_run(RunConfig(**TINY), store, owner=OWNER)
    assert record.state == "finished" and record.owner == OWNER
    assert not [r for r in caplog.records if OWNER in r.getMessage()]
    with zipfile.ZipFile(io.BytesIO(export.run_zip(store, record.run_id))) as archive:
        archived = b"".join(archive.read(name) for name in archive.namelist())
        status = json.loads(archive.read(f"{record.run_id}/{contents.STATUS}"))
    assert OWNER.encode() not in archived
    assert status["owner"] == "" and not {"pid", "host", "traceback"} & set(status)
