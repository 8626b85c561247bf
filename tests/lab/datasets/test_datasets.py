"""Datasets: the registry's entries, real digits and Fashion-MNIST, and the MNIST/CIFAR loaders on small
files in real layouts."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

import models
from lab import datasets
from lab.datasets import Dataset, DatasetError, DatasetMissingError, idx, load_dataset, registry
from lab.datasets.idx import read_idx
from tests.conftest import write_cifar10, write_idx, write_idx_dataset

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def test_digits_is_the_bundled_set_split_80_20_with_a_fixed_seed():
    digits = load_dataset("digits")
    assert (len(digits.train), len(digits.test)) == (1437, 360)
    assert digits.train.images.shape[1:] == (1, 8, 8) and digits.train.images.dtype == torch.uint8
    assert digits.class_names == tuple("0123456789")
    again = datasets.info("digits").read()
    assert torch.equal(again.test.labels, digits.test.labels)
    # every class in both splits (stratified)
    assert set(digits.test.labels.tolist()) == set(range(10))


def test_normalized_images_have_zero_mean_unit_std_on_train():
    train = load_dataset("digits").train
    normalized = train.normalized
    assert normalized.dtype == torch.float32 and normalized.shape == train.images.shape
    assert abs(float(normalized.mean())) < 1e-3
    assert abs(float(normalized.std()) - 1.0) < 1e-2


@pytest.mark.skipif(
    not idx.DEBIAN_FASHION_MNIST.is_dir() and not os.environ.get("CI"),
    reason="Debian package dataset-fashion-mnist not installed (CI installs it)",
)
def test_fashion_mnist_is_found_in_the_debian_package_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLENS_DATA_DIR", str(tmp_path))
    fashion = load_dataset("fashion-mnist")
    assert (len(fashion.train), len(fashion.test)) == (60000, 10000)
    assert fashion.class_names[0] == "T-shirt/top" and fashion.n_classes == 10
    assert fashion.source == str(idx.DEBIAN_FASHION_MNIST)
    assert sorted(torch.bincount(fashion.test.labels).tolist()) == [1000] * 10


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_torchvision_layout_gzipped_or_not(tmp_path, gz):
    write_idx_dataset(tmp_path / "MNIST" / "raw", gz=gz)
    mnist = load_dataset("mnist", str(tmp_path))
    assert (len(mnist.train), len(mnist.test)) == (60, 20)
    assert mnist.image_size == 28 and mnist.in_channels == 1
    assert mnist.train.labels[:10].tolist() == list(range(10))


def test_fashion_mnist_reads_a_plain_folder_of_idx_files(tmp_path):
    write_idx_dataset(tmp_path, gz=True)
    fashion = load_dataset("fashion-mnist", str(tmp_path))
    assert len(fashion.train) == 60 and fashion.class_names[-1] == "Ankle boot"


def test_truncated_idx_file_is_reported_not_crashed(tmp_path):
    write_idx_dataset(tmp_path / "MNIST" / "raw")
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        load_dataset("mnist", str(tmp_path))


def test_read_idx_rejects_a_file_that_is_not_idx(tmp_path):
    path = tmp_path / "junk"
    path.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(DatasetError, match="not an IDX file"):
        read_idx(path)


def test_idx_reader_round_trips(tmp_path):
    array = torch.randint(0, 256, (5, 3, 4), dtype=torch.uint8).numpy()
    assert (read_idx(write_idx(tmp_path / "x-idx3-ubyte", array, gz=True)) == array).all()


def test_missing_local_dataset_says_what_where_and_how(tmp_path):
    with pytest.raises(DatasetMissingError) as caught:
        load_dataset("mnist", str(tmp_path))
    message = str(caught.value)
    assert "train-images-idx3-ubyte" in message and str(tmp_path) in message and "MNIST/raw" in message


def test_missing_data_root_folder_is_named(tmp_path):
    with pytest.raises(DatasetMissingError, match="not a folder"):
        load_dataset("mnist", str(tmp_path / "nowhere"))


def test_offline_download_failure_becomes_one_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLENS_DATA_DIR", str(tmp_path))

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://example/, got: no network")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(DatasetMissingError) as caught:
        load_dataset("mnist")
    message = str(caught.value)
    assert "could not be downloaded" in message and str(tmp_path / "MNIST" / "raw") in message
    assert "\n" not in message


def accept_checksums(monkeypatch: pytest.MonkeyPatch, md5: dict[str, str]) -> None:
    """Make torchvision's CIFAR10 check the md5 of the small files ``write_cifar10`` wrote."""
    cls = torchvision.datasets.CIFAR10
    monkeypatch.setattr(cls, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(cls, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5["batches.meta"]})


def test_cifar10_reads_torchvision_layout_with_its_checksums(tmp_path, monkeypatch):
    accept_checksums(monkeypatch, write_cifar10(tmp_path))
    cifar = load_dataset("cifar10", str(tmp_path))
    assert (len(cifar.train), len(cifar.test)) == (50, 10)
    assert cifar.train.images.shape[1:] == (3, 32, 32)
    assert cifar.class_names == CIFAR10_CLASSES


def test_cifar_batches_naming_other_classes_are_refused(tmp_path, monkeypatch):
    md5 = write_cifar10(tmp_path)
    meta = tmp_path / "cifar-10-batches-py" / "batches.meta"
    meta.write_bytes(pickle.dumps({"label_names": [f"class {i}" for i in range(10)]}))
    accept_checksums(monkeypatch, {**md5, "batches.meta": hashlib.md5(meta.read_bytes()).hexdigest()})
    with pytest.raises(DatasetError, match="names its classes class 0"):
        load_dataset("cifar10", str(tmp_path))


def test_cifar_files_failing_the_checksum_are_refused(tmp_path):
    write_cifar10(tmp_path)  # checksums differ from the real files: torchvision refuses to unpickle them
    with pytest.raises(DatasetError, match="incomplete or corrupt"):
        load_dataset("cifar10", str(tmp_path))


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(DatasetError, match="choose from: digits"):
        load_dataset("imagenet")


def test_missing_cifar_tells_where_to_unpack(tmp_path):
    with pytest.raises(DatasetMissingError, match="cifar-10-batches-py"):
        load_dataset("cifar10", str(tmp_path))


def test_default_data_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLENS_DATA_DIR", str(tmp_path))
    assert datasets.default_data_dir() == Path(tmp_path)


# ---------------------------------------------------------------- the registry


@pytest.mark.parametrize("name", datasets.names())
def test_every_entry_declares_what_the_app_shows(name):
    entry = datasets.info(name)
    assert entry.name == name and entry.label and entry.source.endswith(".")
    assert len(set(entry.class_names)) == entry.n_classes >= 2 and all(entry.class_names)
    assert entry.suggested_model in models.names()
    assert entry.channels in (1, 3) and entry.image_size >= 8


def test_cifar_suggests_resnet8_and_the_grayscale_sets_the_small_model():
    suggested = {entry.name: entry.suggested_model for entry in datasets.available()}
    assert suggested == {
        "digits": "small",
        "mnist": "small",
        "fashion-mnist": "small",
        "cifar10": "resnet8",
        "cifar100": "resnet8",
    }


def test_cifar_class_names_are_the_real_ones():
    assert datasets.info("cifar10").class_names == CIFAR10_CLASSES
    fine = datasets.info("cifar100").class_names
    assert len(fine) == 100 and fine == tuple(sorted(fine))  # label numbers follow the alphabet
    assert (fine[0], fine[30], fine[95], fine[99]) == ("apple", "dolphin", "whale", "worm")


@pytest.mark.parametrize("name", ["digits", "mnist", "fashion-mnist", "cifar10"])
def test_a_loaded_dataset_matches_its_entry(name, tmp_path, monkeypatch):
    if name == "cifar10":
        accept_checksums(monkeypatch, write_cifar10(tmp_path))
    elif name != "digits":
        write_idx_dataset(tmp_path)
    entry = datasets.info(name)
    loaded = datasets.load_dataset(name, None if name == "digits" else str(tmp_path))
    assert (loaded.name, loaded.class_names) == (entry.name, entry.class_names)
    assert (loaded.in_channels, loaded.image_size) == (entry.channels, entry.image_size)


def test_only_digits_is_bundled_and_its_local_copy_is_scikit_learns_file():
    assert [entry.name for entry in datasets.available() if entry.offline] == ["digits"]
    path = datasets.info("digits").local_copy()
    assert path is not None and path.is_file() and "sklearn" in path.parts


def test_local_copy_finds_the_folder_written_and_none_in_an_empty_one(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    for name in ("mnist", "fashion-mnist", "cifar10", "cifar100"):
        assert datasets.info(name).local_copy(str(empty)) is None
    monkeypatch.setenv("LOSSLENS_DATA_DIR", str(empty))
    assert datasets.info("mnist").local_copy() is None

    write_idx_dataset(tmp_path / "layout" / "MNIST" / "raw", gz=True)
    assert datasets.info("mnist").local_copy(str(tmp_path / "layout")) == tmp_path / "layout" / "MNIST" / "raw"
    write_idx_dataset(tmp_path / "plain")
    assert datasets.info("fashion-mnist").local_copy(str(tmp_path / "plain")) == tmp_path / "plain"
    write_cifar10(tmp_path / "default")
    monkeypatch.setenv("LOSSLENS_DATA_DIR", str(tmp_path / "default"))
    assert datasets.info("cifar10").local_copy() == tmp_path / "default" / "cifar-10-batches-py"
    assert datasets.info("cifar100").local_copy() is None


@dataclasses.dataclass(frozen=True)
class Stripes(datasets.DatasetInfo):
    """A dataset made in memory: class c has a bright band in row c."""

    def local_copy(self, data_root: str | None = None) -> Path | None:
        return None

    def read(self, data_root: str | None = None) -> Dataset:
        labels = np.arange(40) % 2
        images = np.zeros((40, 1, 8, 8), dtype=np.uint8)
        images[np.arange(40), 0, labels] = 255
        return Dataset.from_arrays(self.name, images, labels, images[:10], labels[:10], self.class_names, "memory")


def test_a_registered_entry_is_listed_loaded_and_named_once(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    entry = Stripes(
        name="stripes",
        label="Stripes",
        class_names=("top", "second"),
        image_size=8,
        channels=1,
        source="Made in memory by the test.",
        suggested_model="small",
        offline=True,
        train_statistics=((0.5,), (0.5,)),
    )
    datasets.register(entry)
    assert datasets.names()[-1] == "stripes" and datasets.info("stripes") is entry
    loaded = datasets.load_dataset("stripes")
    assert loaded.class_names == ("top", "second") and len(loaded.train) == 40
    assert datasets.load_dataset("stripes") is loaded  # read once per process
    with pytest.raises(ValueError, match="registered twice"):
        datasets.register(entry)


def test_loading_logs_what_came_from_where(caplog):
    with caplog.at_level(logging.INFO, logger="lab.datasets"):
        datasets.load_dataset("digits")
    assert "digits: 1437 train and 360 test images from scikit-learn bundled digits" in caplog.text
