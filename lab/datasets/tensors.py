"""What every dataset shares: train and test splits held whole in memory as tensors.

A :class:`Dataset` has train and test splits. Each split keeps the raw images (uint8, N x C x H x W,
for display and Grad-CAM overlays) and the labels; the normalized float32 images used for training
are computed once per split (``Split.normalized``), with the train split's per-channel statistics.

Which datasets exist, where their files come from and how they are read is the registry's job
(:mod:`lab.datasets`, one module per family; ``load_dataset`` reads one). A dataset that is
neither on disk nor downloadable raises :class:`DatasetMissingError`, whose message says what is
missing, where it was looked for and how to provide it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import numpy as np
import torch


class DatasetError(ValueError):
    """A dataset's files are present but unreadable (truncated, wrong format), or the name is unknown."""


class DatasetMissingError(DatasetError):
    """A dataset is not on this machine and could not be downloaded."""


def default_data_dir() -> Path:
    """Where downloads go and local copies are looked for: $LOSSLENS_DATA_DIR or ./data."""
    return Path(os.environ.get("LOSSLENS_DATA_DIR", "data")).expanduser().absolute()


def normalize(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 (or [0, 255] float) images to standardized float32."""
    shape = (1, -1, 1, 1)
    scaled = images.float() / 255.0
    return (scaled - torch.tensor(mean).view(shape)) / torch.tensor(std).view(shape)


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """One split: raw uint8 images (N x C x H x W) and int64 labels."""

    images: torch.Tensor
    labels: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.labels)

    @functools.cached_property
    def normalized(self) -> torch.Tensor:
        """float32 images scaled to [0, 1] then standardized with the train split's statistics."""
        return normalize(self.images, self.mean, self.std)


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    train: Split
    test: Split
    class_names: tuple[str, ...]
    source: str

    @classmethod
    def from_arrays(
        cls,
        name: str,
        train_x: np.ndarray,
        train_y: np.ndarray,
        test_x: np.ndarray,
        test_y: np.ndarray,
        class_names: tuple[str, ...],
        source: str,
    ) -> Dataset:
        """A Dataset from N x C x H x W uint8 arrays and integer labels, standardized with the per-channel
        statistics of the train split; ``source`` says where the arrays came from."""
        scaled = train_x.astype(np.float64) / 255.0
        mean = tuple(float(v) for v in scaled.mean(axis=(0, 2, 3)))
        std = tuple(float(max(v, 1e-6)) for v in scaled.std(axis=(0, 2, 3)))

        def as_split(x: np.ndarray, y: np.ndarray) -> Split:
            images = torch.from_numpy(np.array(x, dtype=np.uint8, order="C"))
            return Split(images, torch.from_numpy(np.asarray(y).astype(np.int64)), mean, std)

        return cls(name, as_split(train_x, train_y), as_split(test_x, test_y), class_names, source)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train.images.shape[2]
