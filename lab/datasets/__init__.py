"""Datasets by name: ``lab.datasets.load(name, data_root)``; ``names()``, ``info(name)``, ``available()``.

Each module registers its entries (:class:`DatasetInfo`): adding a dataset is one entry in one module.
"""

from lab.datasets.base import DatasetInfo, TorchvisionDataset
from lab.datasets.registry import available, info, load, names, register

from lab.datasets import digits, idx, cifar  # register themselves, in this order

__all__ = ["DatasetInfo", "TorchvisionDataset", "available", "info", "load", "names", "register"]
