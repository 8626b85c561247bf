"""The dataset registry: each dataset module registers its entries with :func:`register`."""

from __future__ import annotations

import functools
import logging

from lab.datasets.base import DatasetInfo
from lab.datasets.tensors import Dataset, DatasetError

log = logging.getLogger(__name__)

_REGISTRY: dict[str, DatasetInfo] = {}


def register(entry: DatasetInfo) -> DatasetInfo:
    """Add a dataset entry under its name."""
    if entry.name in _REGISTRY:
        raise ValueError(f"dataset {entry.name!r} is registered twice")
    _REGISTRY[entry.name] = entry
    return entry


def names() -> list[str]:
    return list(_REGISTRY)


def available() -> list[DatasetInfo]:
    return list(_REGISTRY.values())


def info(name: str) -> DatasetInfo:
    if name not in _REGISTRY:
        raise DatasetError(f"dataset: unknown dataset {name!r} (choose from: {', '.join(_REGISTRY)})")
    return _REGISTRY[name]


@functools.lru_cache(maxsize=4)
def load_dataset(name: str, data_root: str | None = None) -> Dataset:
    """The named dataset, read once per process (tensors are shared; do not modify them)."""
    dataset = info(name).read(data_root)
    log.info("%s: %d train and %d test images from %s", name, len(dataset.train), len(dataset.test), dataset.source)
    return dataset
