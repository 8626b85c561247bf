"""Shared fixtures and helpers: a tiny digits run trained once per module, ``python -m lab`` in a fresh
process, and writers of small dataset files in real layouts."""

from __future__ import annotations

import gzip
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from lab import datasets
from lab.analysis.seed_stats import RunResult
from lab.datasets import load_dataset
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.training.loop import train_run

ROOT = Path(__file__).resolve().parents[1]
# The README's test command (and CI) runs every check, the slowest in a smaller form; LOSSLENS_FULL_TESTS=1
# runs those at full size (every page in every mode for the screenshots, for example).
FULL_TESTS = os.environ.get("LOSSLENS_FULL_TESTS") == "1"


@pytest.fixture(autouse=True)
def _fresh_dataset_cache():
    """Datasets are cached per process; tests that write files need a clean cache."""
    datasets.load_dataset.cache_clear()
    yield
    datasets.load_dataset.cache_clear()


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A finished run of the default settings on digits for 3 epochs: (its store, its record, the dataset)."""
    store = RunStore(tmp_path_factory.mktemp("runs"))
    record = train_run(RunConfig(epochs=3), store)
    assert record.state == "finished", record.status
    return store, record, load_dataset("digits")


def run_cli(*args: str, timeout: float = 600, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m lab ARGS`` from the repository root, as a user runs it; ``env`` replaces the environment."""
    return subprocess.run(
        [sys.executable, "-m", "lab", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env
    )


class StopAfter:
    """A progress callback that sets its stop ``event`` at the ``count``-th report, as a click on Stop
    during training would; ``reports`` keeps every report."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.event = threading.Event()
        self.reports: list = []

    def __call__(self, progress) -> None:
        self.reports.append(progress)
        if len(self.reports) == self.count:
            self.event.set()


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """Write ``array`` (uint8) as an IDX file, the MNIST format."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)
    return path


def write_idx_dataset(folder: Path, n_train: int = 60, n_test: int = 20, gz: bool = False, seed: int = 0) -> None:
    """Four small IDX files (28x28, 10 classes) whose class is readable from the image."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 40, size=(n, 28, 28))
        for i, label in enumerate(labels):
            images[i, 2 * label : 2 * label + 4, :] = 255
        write_idx(folder / f"{split}-images-idx3-ubyte", images, gz)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels, gz)


def write_cifar10(root: Path, n_per_batch: int = 10) -> dict[str, str]:
    """A tiny cifar-10-batches-py folder; returns the md5 of each file (torchvision checks them)."""
    import hashlib

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {
            "data": rng.integers(0, 256, size=(n_per_batch, 3 * 32 * 32), dtype=np.uint8),
            "labels": [int(v) for v in np.arange(n_per_batch) % 10],
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": classes}))
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def summary_result(variant, seed, acc, *, state="finished", loss="softmax", params=None) -> RunResult:
    """A run as the experiment summary sees it, its figures made up from its accuracy ``acc`` (none unless
    it finished)."""
    figures = {
        "test_acc": acc,
        "mean_within_class_angle": 10 * acc,
        "min_between_class_angle": 20 * acc,
        "share_beyond_margin": acc / 2,
        "class_spread": 1 - acc,
    }
    return RunResult(
        f"{variant}-{seed}-{state}",
        variant,
        loss,
        params or {},
        seed,
        state,
        "",
        figures if state == "finished" else None,
    )
