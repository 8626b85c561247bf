"""Datasets by name, held whole in memory as tensors.

``load_dataset(name, data_root)`` returns a :class:`Dataset` with train and test splits. Each split
keeps the raw images (uint8, N x C x H x W, for display and Grad-CAM overlays) and the labels; the
normalised float32 images used for training are computed once per split (``Split.normalised``).

Where the files come from:

* ``digits``: scikit-learn's bundled 8x8 digits, split 80/20 with a fixed seed. Always offline.
* ``mnist``, ``fashion-mnist``: the four IDX files (gzipped or not), found in ``data_root`` either
  in torchvision's layout (``ROOT/MNIST/raw``, ``ROOT/FashionMNIST/raw``) or as a plain folder.
  Without ``data_root``: the default data folder, then (Fashion-MNIST) Debian's
  ``dataset-fashion-mnist`` package folder, then a download through torchvision.
* ``cifar10``, ``cifar100``: torchvision's python batches (``ROOT/cifar-10-batches-py``,
  ``ROOT/cifar-100-python``), md5-checked by torchvision before they are read; downloaded when no
  local copy exists and no ``data_root`` was given.

A dataset that is neither on disk nor downloadable raises :class:`DatasetMissingError`, whose
message says what is missing, where it was looked for and how to provide it.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import os
from pathlib import Path

import numpy as np
import torch

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
IDX_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
TORCHVISION_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
CIFAR_FOLDER = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
DATASET_CLASSES = {"digits": 10, "mnist": 10, "fashion-mnist": 10, "cifar10": 10, "cifar100": 100}


class DatasetError(ValueError):
    """A dataset's files are present but unreadable (truncated, wrong format)."""


class DatasetMissingError(DatasetError):
    """A dataset is not on this machine and could not be downloaded."""


def default_data_dir() -> Path:
    """Where downloads go and local copies are looked for: $LOSSLENS_DATA_DIR or ./data."""
    return Path(os.environ.get("LOSSLENS_DATA_DIR", "data")).expanduser().absolute()


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
    def normalised(self) -> torch.Tensor:
        """float32 images scaled to [0, 1] then standardised with the train split's statistics."""
        return normalise(self.images, self.mean, self.std)


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    train: Split
    test: Split
    class_names: tuple[str, ...]
    source: str

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train.images.shape[2]


def normalise(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 (or [0, 255] float) images to standardised float32."""
    shape = (1, -1, 1, 1)
    scaled = images.float() / 255.0
    return (scaled - torch.tensor(mean).view(shape)) / torch.tensor(std).view(shape)


def _make(
    name: str,
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    class_names: tuple[str, ...],
    source: str,
) -> Dataset:
    """Build a Dataset from N x C x H x W uint8 arrays, with per-channel stats of the train split."""
    scaled = train_x.astype(np.float64) / 255.0
    mean = tuple(float(v) for v in scaled.mean(axis=(0, 2, 3)))
    std = tuple(float(max(v, 1e-6)) for v in scaled.std(axis=(0, 2, 3)))
    as_split = lambda x, y: Split(
        torch.from_numpy(np.array(x, dtype=np.uint8, order="C")), torch.from_numpy(y.astype(np.int64)), mean, std
    )  # noqa: E731
    return Dataset(name, as_split(train_x, train_y), as_split(test_x, test_y), class_names, source)


@functools.lru_cache(maxsize=4)
def load_dataset(name: str, data_root: str | None = None) -> Dataset:
    """The named dataset, loaded once per process (tensors are shared; do not modify them)."""
    if name == "digits":
        return _load_digits()
    if name in TORCHVISION_FOLDER:
        return _load_idx_dataset(name, data_root)
    if name in CIFAR_FOLDER:
        return _load_cifar(name, data_root)
    raise DatasetError(
        f"dataset: unknown dataset {name!r} (choose from: digits, mnist, fashion-mnist, cifar10, cifar100)"
    )


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    train_x, test_x, train_y, test_y = train_test_split(
        images, bunch.target, test_size=0.2, random_state=0, stratify=bunch.target
    )
    return _make("digits", train_x, train_y, test_x, test_y, MNIST_CLASSES, "scikit-learn bundled digits")


# ---------------------------------------------------------------- IDX (MNIST, Fashion-MNIST)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped or not) of unsigned bytes, checking its header against its size."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as err:
        raise DatasetError(f"{path}: cannot be read ({err}); replace it with an intact copy") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetError(f"{path}: is not an IDX file of unsigned bytes; replace it with an intact copy")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise DatasetError(
            f"{path}: holds {len(data)} bytes but its header promises {expected}; the file is truncated or corrupt"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def find_idx_files(folder: Path) -> dict[tuple[str, str], Path] | None:
    """The four IDX files in ``folder`` (``x-idx3-ubyte``, ``x.idx3-ubyte``, optionally ``.gz``), or None."""
    found = {}
    for key, stem in IDX_FILES.items():
        dotted = stem.replace("-idx", ".idx")
        candidates = [folder / name for base in (stem, dotted) for name in (base, base + ".gz")]
        match = next((p for p in candidates if p.is_file()), None)
        if match is None:
            return None
        found[key] = match
    return found


def _idx_candidates(name: str, root: Path) -> list[Path]:
    return [root / TORCHVISION_FOLDER[name] / "raw", root]


def _load_idx_dataset(name: str, data_root: str | None) -> Dataset:
    class_names = MNIST_CLASSES if name == "mnist" else FASHION_CLASSES
    if data_root is not None:
        folders = _idx_candidates(name, _existing_root(data_root))
    else:
        folders = _idx_candidates(name, default_data_dir())
        if name == "fashion-mnist":
            folders.append(DEBIAN_FASHION_MNIST)
    for folder in folders:
        files = find_idx_files(folder)
        if files is not None:
            return _idx_to_dataset(name, files, class_names, str(folder))
    if data_root is not None:
        raise DatasetMissingError(_missing_idx_message(name, folders, downloaded=False))
    root = default_data_dir()
    _download_torchvision(name, root, folders)
    files = find_idx_files(root / TORCHVISION_FOLDER[name] / "raw")
    if files is None:
        raise DatasetMissingError(_missing_idx_message(name, folders, downloaded=True))
    return _idx_to_dataset(name, files, class_names, str(root / TORCHVISION_FOLDER[name] / "raw"))


def _idx_to_dataset(
    name: str, files: dict[tuple[str, str], Path], class_names: tuple[str, ...], source: str
) -> Dataset:
    arrays = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[(split, "images")], arrays[(split, "labels")]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetError(f"{source}: {split} images {images.shape} and labels {labels.shape} do not match")
        if labels.max(initial=0) >= len(class_names):
            raise DatasetError(
                f"{source}: {split} labels go up to {labels.max()} but {name} has {len(class_names)} classes"
            )
    return _make(
        name,
        arrays[("train", "images")][:, None],
        arrays[("train", "labels")],
        arrays[("test", "images")][:, None],
        arrays[("test", "labels")],
        class_names,
        source,
    )


def _missing_idx_message(name: str, folders: list[Path], downloaded: bool) -> str:
    looked = ", ".join(str(f) for f in folders)
    tried = " and could not be downloaded (no network?)" if downloaded else ""
    hint = " or install Debian's dataset-fashion-mnist package" if name == "fashion-mnist" else ""
    return (
        f"{name}: the four IDX files ({', '.join(IDX_FILES.values())}, .gz or not) were not found in {looked}{tried}. "
        f"Download them and put them in {default_data_dir() / TORCHVISION_FOLDER[name] / 'raw'}, "
        f"or choose a folder that holds them as data root{hint}."
    )


def _existing_root(data_root: str) -> Path:
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise DatasetMissingError(
            f"data_root: {root} is not a folder on this machine; choose an existing folder or leave it empty"
        )
    return root


def _download_torchvision(name: str, root: Path, looked: list[Path]) -> None:
    """Let torchvision download into ``root`` (it prints progress); any failure is a clear message."""
    import torchvision

    cls = {
        "mnist": torchvision.datasets.MNIST,
        "fashion-mnist": torchvision.datasets.FashionMNIST,
        "cifar10": torchvision.datasets.CIFAR10,
        "cifar100": torchvision.datasets.CIFAR100,
    }[name]
    try:
        root.mkdir(parents=True, exist_ok=True)
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as err:  # network errors come in many types (URLError, HTTPError, OSError, RuntimeError)
        message = (
            _missing_idx_message(name, looked, downloaded=True)
            if name in TORCHVISION_FOLDER
            else _missing_cifar_message(name, looked, downloaded=True)
        )
        reason = (str(err).strip().splitlines() or [""])[0]
        raise DatasetMissingError(f"{message} (download error: {type(err).__name__}: {reason})") from None


# ---------------------------------------------------------------- CIFAR


def _missing_cifar_message(name: str, folders: list[Path], downloaded: bool) -> str:
    looked = ", ".join(str(f / CIFAR_FOLDER[name]) for f in folders)
    tried = " and could not be downloaded (no network?)" if downloaded else ""
    archive = "cifar-10-python.tar.gz" if name == "cifar10" else "cifar-100-python.tar.gz"
    return (
        f"{name}: the python batches were not found in {looked}{tried}. Download {archive} from the CIFAR page, "
        f"unpack it into {default_data_dir()} (giving {default_data_dir() / CIFAR_FOLDER[name]}), or choose the folder "
        f"that holds {CIFAR_FOLDER[name]} as data root."
    )


def _load_cifar(name: str, data_root: str | None) -> Dataset:
    import torchvision

    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    root = _existing_root(data_root) if data_root is not None else default_data_dir()
    if not (root / CIFAR_FOLDER[name]).is_dir():
        if data_root is not None:
            raise DatasetMissingError(_missing_cifar_message(name, [root], downloaded=False))
        _download_torchvision(name, root, [root])
    try:
        train, test = (cls(str(root), train=flag, download=False) for flag in (True, False))
    except RuntimeError as err:  # torchvision's md5 check failed or files are missing
        raise DatasetError(
            f"{name}: the files in {root / CIFAR_FOLDER[name]} are incomplete or corrupt ({err}); "
            "replace them with an intact copy"
        ) from None
    to_nchw = lambda d: np.ascontiguousarray(np.asarray(d.data, dtype=np.uint8).transpose(0, 3, 1, 2))  # noqa: E731
    return _make(
        name,
        to_nchw(train),
        np.asarray(train.targets),
        to_nchw(test),
        np.asarray(test.targets),
        tuple(train.classes),
        str(root / CIFAR_FOLDER[name]),
    )
