"""CIFAR-10 and CIFAR-100: torchvision's python batches (``ROOT/cifar-10-batches-py``,
``ROOT/cifar-100-python``), md5-checked by torchvision before they are read; downloaded into the
default data folder when no local copy exists and no ``data_root`` was given."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from lab.datasets.base import TorchvisionDataset, existing_root
from lab.datasets.registry import register
from lab.datasets.tensors import Dataset, DatasetError, default_data_dir

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# the fine labels, in the order of the label numbers (alphabetical, as in the archive's meta file)
CIFAR100_CLASSES = tuple(
    """
    apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly
    camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup
    dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower
    leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid
    otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray
    road rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar
    sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip turtle
    wardrobe whale willow_tree wolf woman worm
    """.split()
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CifarDataset(TorchvisionDataset):
    """A CIFAR dataset; torchvision unpacks ``archive`` into ``ROOT/<folder>``."""

    folder: str
    archive: str
    image_size: int = 32
    channels: int = 3
    suggested_model: str = "resnet8"

    def local_copy(self, data_root: str | None = None) -> Path | None:
        root = Path(data_root).expanduser() if data_root is not None else default_data_dir()
        return root / self.folder if (root / self.folder).is_dir() else None

    def read(self, data_root: str | None = None) -> Dataset:
        import torchvision

        root = existing_root(data_root) if data_root is not None else default_data_dir()
        if self.local_copy(data_root) is None:
            if data_root is not None:
                raise self.missing([root / self.folder], downloaded=False)
            self.download([root / self.folder])
        cls = getattr(torchvision.datasets, self.torchvision_class)
        try:
            train, test = (cls(str(root), train=flag, download=False) for flag in (True, False))
        except RuntimeError as err:  # torchvision's md5 check failed or files are missing
            raise DatasetError(
                f"{self.name}: the files in {root / self.folder} are incomplete or corrupt ({err}); "
                "replace them with an intact copy"
            ) from None
        if tuple(train.classes) != self.class_names:
            raise DatasetError(
                f"{self.name}: {root / self.folder} names its classes {', '.join(train.classes[:3])}, ... "
                f"instead of {', '.join(self.class_names[:3])}, ...; replace it with the original archive"
            )
        to_nchw = lambda d: np.ascontiguousarray(np.asarray(d.data, dtype=np.uint8).transpose(0, 3, 1, 2))
        return Dataset.from_arrays(
            self.name,
            to_nchw(train),
            np.asarray(train.targets),
            to_nchw(test),
            np.asarray(test.targets),
            self.class_names,
            str(root / self.folder),
        )

    def missing_what(self) -> str:
        return "the python batches"

    def missing_remedy(self) -> str:
        root = default_data_dir()
        return (
            f"Download {self.archive} from the CIFAR page, unpack it into {root} (giving {root / self.folder}), "
            f"or choose the folder that holds {self.folder} as data root."
        )


def cifar(
    n_classes: int,
    class_names: tuple[str, ...],
    folder: str,
    statistics: tuple[tuple[float, ...], tuple[float, ...]],
    kind: str = "classes",
) -> CifarDataset:
    """CIFAR-``n_classes``: the two archives are one family and differ only in these."""
    return CifarDataset(
        name=f"cifar{n_classes}",
        label=f"CIFAR-{n_classes}",
        class_names=class_names,
        source=f"Krizhevsky's 32x32 color photos in {n_classes} {kind} (50,000 train, 10,000 test), as python batches.",
        torchvision_class=f"CIFAR{n_classes}",
        folder=folder,
        archive=f"cifar-{n_classes}-python.tar.gz",
        train_statistics=statistics,
    )


register(
    cifar(
        10,
        CIFAR10_CLASSES,
        "cifar-10-batches-py",
        ((0.49139968, 0.48215841, 0.44653091), (0.24703223, 0.24348513, 0.26158784)),
    )
)
register(
    cifar(
        100,
        CIFAR100_CLASSES,
        "cifar-100-python",
        ((0.50707516, 0.48654887, 0.44091784), (0.26733429, 0.25643846, 0.27615047)),
        kind="fine classes",
    )
)
