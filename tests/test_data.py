"""Datasets: real digits and Fashion-MNIST, and the MNIST/CIFAR loaders on small files in real layouts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torchvision

from lab import data
from lab.data import DatasetError, DatasetMissingError, load_dataset, read_idx
from tests.conftest import write_cifar10, write_idx, write_idx_dataset


def test_digits_is_the_bundled_set_split_80_20_with_a_fixed_seed():
    digits = load_dataset("digits")
    assert (len(digits.train), len(digits.test)) == (1437, 360)
    assert digits.train.images.shape[1:] == (1, 8, 8) and digits.train.images.dtype == torch.uint8
    assert digits.class_names == tuple("0123456789")
    again = data._load_digits()
    assert torch.equal(again.test.labels, digits.test.labels)
    # every class in both splits (stratified)
    assert set(digits.test.labels.tolist()) == set(range(10))


def test_normalised_images_have_zero_mean_unit_std_on_train():
    train = load_dataset("digits").train
    normalised = train.normalised
    assert normalised.dtype == torch.float32 and normalised.shape == train.images.shape
    assert abs(float(normalised.mean())) < 1e-3
    assert abs(float(normalised.std()) - 1.0) < 1e-2


@pytest.mark.skipif(
    not data.DEBIAN_FASHION_MNIST.is_dir() and not os.environ.get("CI"),
    reason="Debian package dataset-fashion-mnist not installed (CI installs it)",
)
def test_fashion_mnist_is_found_in_the_debian_package_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLENS_DATA_DIR", str(tmp_path))
    fashion = load_dataset("fashion-mnist")
    assert (len(fashion.train), len(fashion.test)) == (60000, 10000)
    assert fashion.class_names[0] == "T-shirt/top" and fashion.n_classes == 10
    assert fashion.source == str(data.DEBIAN_FASHION_MNIST)
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


def test_cifar10_reads_torchvision_layout_with_its_checksums(tmp_path, monkeypatch):
    md5 = write_cifar10(tmp_path)
    cls = torchvision.datasets.CIFAR10
    monkeypatch.setattr(cls, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(cls, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5["batches.meta"]})
    cifar = load_dataset("cifar10", str(tmp_path))
    assert (len(cifar.train), len(cifar.test)) == (50, 10)
    assert cifar.train.images.shape[1:] == (3, 32, 32)
    assert cifar.class_names[0] == "airplane"


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
    assert data.default_data_dir() == Path(tmp_path)
