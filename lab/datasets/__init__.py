"""Datasets by name: ``load_dataset(name, data_root)``; ``names()``, ``info(name)``, ``available()``; the
tensors a loaded dataset holds (:class:`Dataset`, :class:`Split`); the images a user uploads (``uploads``)
and pixel-exact enlarging for display (``images``).

Each module registers its entries (:class:`DatasetInfo`): adding a dataset is one entry in one module,
with everything the app needs to know about it (classes, size, channels, where it comes from, its
train statistics, whether its background is black).
"""

from lab.datasets.base import DatasetInfo, TorchvisionDataset
from lab.datasets.registry import available, info, load_dataset, names, register
from lab.datasets.tensors import Dataset, DatasetError, DatasetMissingError, Split, default_data_dir, normalize

from lab.datasets import digits, idx, cifar  # register themselves, in this order

__all__ = [
    "Dataset",
    "DatasetError",
    "DatasetInfo",
    "DatasetMissingError",
    "Split",
    "TorchvisionDataset",
    "available",
    "default_data_dir",
    "info",
    "load_dataset",
    "names",
    "normalize",
    "register",
]
