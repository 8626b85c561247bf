"""MNIST and Fashion-MNIST: the four IDX files, gzipped or not.

They are found in ``data_root`` either in torchvision's layout (``ROOT/MNIST/raw``,
``ROOT/FashionMNIST/raw``) or as a plain folder. Without ``data_root``: the default data folder, then
(Fashion-MNIST) Debian's ``dataset-fashion-mnist`` package folder, then a download through torchvision.
"""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np

from lab.datasets.base import TorchvisionDataset, existing_root
from lab.datasets.digits import DIGIT_CLASSES
from lab.datasets.registry import register
from lab.datasets.tensors import Dataset, DatasetError, default_data_dir

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
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


@dataclasses.dataclass(frozen=True, kw_only=True)
class IdxDataset(TorchvisionDataset):
    """An MNIST-style dataset; torchvision keeps it in ``ROOT/<torchvision_class>/raw``."""

    image_size: int = 28
    channels: int = 1
    suggested_model: str = "small"
    extra_folders: tuple[Path, ...] = ()  # looked in after the default data folder
    package_hint: str = ""  # how else to install it, appended to the missing-files message

    def folders(self, data_root: str | None) -> list[Path]:
        """Where the IDX files are looked for, in order."""
        if data_root is not None:
            root = Path(data_root).expanduser()
            return [root / self.torchvision_class / "raw", root]
        root = default_data_dir()
        return [root / self.torchvision_class / "raw", root, *self.extra_folders]

    def local_copy(self, data_root: str | None = None) -> Path | None:
        found = self._find(data_root)
        return found[0] if found else None

    def read(self, data_root: str | None = None) -> Dataset:
        if data_root is not None:
            existing_root(data_root)
        found = self._find(data_root)
        if found is None:
            looked = self.folders(data_root)
            if data_root is not None:
                raise self.missing(looked, downloaded=False)
            self.download(looked)
            found = self._find(None)
            if found is None:
                raise self.missing(looked, downloaded=True)
        return self._from_files(found[1], str(found[0]))

    def _find(self, data_root: str | None) -> tuple[Path, dict[tuple[str, str], Path]] | None:
        """The first folder that holds the four files, and the files."""
        for folder in self.folders(data_root):
            files = find_idx_files(folder)
            if files is not None:
                return folder, files
        return None

    def missing_what(self) -> str:
        return f"the four IDX files ({', '.join(IDX_FILES.values())}, .gz or not)"

    def missing_remedy(self) -> str:
        target = default_data_dir() / self.torchvision_class / "raw"
        return (
            f"Download them and put them in {target}, "
            f"or choose a folder that holds them as data root{self.package_hint}."
        )

    def _from_files(self, files: dict[tuple[str, str], Path], source: str) -> Dataset:
        arrays = {key: read_idx(path) for key, path in files.items()}
        for split in ("train", "test"):
            images, labels = arrays[(split, "images")], arrays[(split, "labels")]
            if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
                raise DatasetError(f"{source}: {split} images {images.shape} and labels {labels.shape} do not match")
            if labels.max(initial=0) >= self.n_classes:
                raise DatasetError(
                    f"{source}: {split} labels go up to {labels.max()} but {self.name} has {self.n_classes} classes"
                )
        return Dataset.from_arrays(
            self.name,
            arrays[("train", "images")][:, None],
            arrays[("train", "labels")],
            arrays[("test", "images")][:, None],
            arrays[("test", "labels")],
            self.class_names,
            source,
        )


register(
    IdxDataset(
        name="mnist",
        label="MNIST",
        class_names=DIGIT_CLASSES,
        source="LeCun, Cortes and Burges' 28x28 handwritten digits (60,000 train, 10,000 test), as four IDX files.",
        torchvision_class="MNIST",
        train_statistics=((0.1306604762738429,), (0.30810780385646264,)),
        foreground_known=True,
    )
)
register(
    IdxDataset(
        name="fashion-mnist",
        label="Fashion-MNIST",
        class_names=FASHION_CLASSES,
        source="Zalando's 28x28 grayscale clothing images (60,000 train, 10,000 test), as four IDX files.",
        torchvision_class="FashionMNIST",
        extra_folders=(DEBIAN_FASHION_MNIST,),
        package_hint=" or install Debian's dataset-fashion-mnist package",
        train_statistics=((0.2860405969887955,), (0.35302424451492254,)),
        foreground_known=True,
    )
)
