"""Run folders planted for the tests of run files and of everything that reads them: finished runs written by the
real writer (``make_run`` with one epoch's metrics and a few test images, ``plant`` with files that fit a
2-epoch digits run), files replaced as someone with write access to the runs folder could (``rewrite``,
``edit_status``), a full disk (``full_disk``), and a run folder written by an earlier version (``OLD_RUNS``)."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from lab.runs import contents
from lab.runs import io as run_io
from lab.runs import store as runstore
from lab.runs import writer as run_writer
from lab.runs.io import write_json_atomic
from lab.runs.store import RunStore
from lab.runs.tensor_files import RunFeatures, RunSnapshots
from lab.settings.config import RunConfig
from tests.conftest import ROOT

OLD_RUNS = ROOT / "tests" / "fixtures" / "runs"  # written by LossLens before epoch 0 and images
OLD_RUN = "example-digits-2d-softmax"
OWNER = "alicesecret0001"
TINY = {"epochs": 1, "train_limit": 64, "snapshot_points": 10}
# a digits run of the default model, 2-D: test images, feature dimension, classes, snapshot subset, and the
# width of the model's penultimate layer on 8x8 digits
N, DIM, CLASSES, SUBSET, PENULTIMATE = 40, 2, 10, 10, 128


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


def make_run(store: RunStore, owner: str = OWNER, experiment: str = "exp", **config) -> str:
    """A finished run of ``owner`` in ``experiment``: one epoch's metrics, the features of 4 test images
    (``tiny_features``) and a test accuracy of 0.5."""
    writer = store.create(RunConfig(experiment=experiment, **config), owner=owner)
    writer.write_metrics([{"epoch": 1, "test_acc": 0.5}])
    writer.save_features(tiny_features())
    writer.set_status("finished", message="done", test_acc=0.5)
    return writer.run_id


def edit_status(store: RunStore, run_id: str, **changes: object) -> None:
    path = store.run_dir(run_id) / contents.STATUS
    write_json_atomic(path, {**json.loads(path.read_text()), **changes})


def features(seed: int = 0, dim: int = DIM) -> dict[str, torch.Tensor]:
    """The tensors of a features file that fits a digits run of the default model in ``dim`` dimensions."""
    generator = torch.Generator().manual_seed(seed)
    return {
        "test_features": torch.randn(N, dim, generator=generator),
        "test_labels": torch.arange(N) % CLASSES,
        "test_logits": torch.randn(N, CLASSES, generator=generator),
        "snapshot_indices": torch.arange(SUBSET),
        "penultimate": torch.randn(SUBSET, PENULTIMATE, generator=generator),
        "class_directions": torch.randn(CLASSES, dim, generator=generator),
        "snapshot_images": torch.zeros(SUBSET, 1, 8, 8, dtype=torch.uint8),
    }


def snapshots(rows: int = 3, subset: int = SUBSET, dim: int = DIM) -> dict[str, torch.Tensor]:
    return {
        "indices": torch.arange(subset),
        "features": torch.randn(rows, subset, dim),
        "epochs": torch.arange(rows),
        "test_acc": torch.rand(rows),
    }


def plant(store: RunStore, experiment: str = "exp", seed: int = 0, epochs: int = 2, **config) -> str:
    """A finished run written by the real writer, with features and snapshots that fit its config."""
    writer = store.create(RunConfig(experiment=experiment, seed=seed, epochs=epochs, **config))
    dim = writer.config.feat_dim
    writer.save_features(RunFeatures(**features(seed, dim)))
    writer.save_snapshots(RunSnapshots(**snapshots(dim=dim)))
    writer.set_status("finished", message="done", test_acc=0.5, epoch=epochs)
    return writer.run_id


def rewrite(store: RunStore, run_id: str, filename: str, tensors: dict[str, torch.Tensor]) -> None:
    """Replace a run file as someone with write access to the runs folder could: no checks."""
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(store.run_dir(run_id) / filename))


def full_disk(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """From now on every run-file write fails as on a full disk; returns the count of attempts."""
    attempts = {"writes": 0}

    def no_space(path: Path, *args: object, **kwargs: object) -> None:
        attempts["writes"] += 1
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    for module in (run_io, runstore, run_writer):
        monkeypatch.setattr(module, "write_atomic", no_space)
    monkeypatch.setattr(run_writer, "save_tensors_atomic", no_space)
    return attempts
