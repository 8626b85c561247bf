"""A dataset held on the device as tensors, shared by the runs of a lockstep group: batches are index slices, no
DataLoader."""

from __future__ import annotations

import torch

from lab.datasets import Dataset, Split, load_dataset, normalize
from lab.settings.config import RunConfig
from lab.settings.device import resolve_device
from lab.training.evaluation import SNAPSHOT_SEED


def epoch_batches(
    n: int, batch_size: int, generator: torch.Generator, device: torch.device | None = None
) -> list[torch.Tensor]:
    """A shuffled epoch as index batches (on ``device``); a last batch of one sample is dropped (BatchNorm
    needs two). The order is drawn on the CPU, so every device trains on the same batches."""
    order = torch.randperm(n, generator=generator)
    if device is not None:
        order = order.to(device, non_blocking=True)
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < 2:
        batches.pop()
    return batches


def _training_tensors(split: Split, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalised training images and labels, or a fixed random subset of ``limit`` of them (only the
    subset is normalised, so a limited run never holds a float copy of the whole split)."""
    if 0 < limit < len(split):
        keep = torch.randperm(len(split), generator=torch.Generator().manual_seed(SNAPSHOT_SEED))[:limit]
        return normalize(split.images[keep], split.mean, split.std), split.labels[keep]
    return split.normalized, split.labels


class DeviceData:
    """A dataset's normalized images and labels on one device, each made on first use and kept.

    :func:`train_experiment` gives one to every run of the same dataset and device, so they share a single
    device copy; :func:`train_run` called alone makes its own.
    """

    def __init__(self, dataset: Dataset, device: torch.device | str) -> None:
        self.dataset = dataset
        self.device = torch.device(device)
        self._tensors: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def _split(self, name: str, split: Split, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
        limit = limit if 0 < limit < len(split) else 0
        if (name, limit) not in self._tensors:
            images, labels = _training_tensors(split, limit)
            self._tensors[name, limit] = images.to(self.device), labels.to(self.device)
        return self._tensors[name, limit]

    def train(self, limit: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """The training images and labels: all, or the fixed random subset of ``limit`` (0: all)."""
        return self._split("train", self.dataset.train, limit)

    def test(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._split("test", self.dataset.test, 0)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (so wall-clock timings are honest on accelerators)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def shared_device_data(config: RunConfig, data: DeviceData | None, dataset: Dataset | None) -> DeviceData:
    """``data`` when it holds the config's dataset on its device, else the dataset put on the device."""
    device = resolve_device(config.device)
    if data is None:
        return DeviceData(dataset or load_dataset(config.dataset, config.data_root), device)
    if data.dataset.name != config.dataset or data.device != device or dataset not in (None, data.dataset):
        raise ValueError(
            f"the shared data is {data.dataset.name} on {data.device}; this run trains on {config.dataset} on {device}"
        )
    return data


def data_key(config: RunConfig) -> tuple[str, str | None, str]:
    """What runs must share to train in one group: the dataset (and its folder) on one device."""
    return config.dataset, config.data_root, str(resolve_device(config.device))
