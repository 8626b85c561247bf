"""What every dataset entry declares, and the file handling the downloadable ones share.

An entry is a frozen :class:`DatasetInfo`: its name, label, class names, image shape, where it comes
from, whether it is bundled (never needs a download), the model suggested for it, and two methods:
``local_copy(data_root)`` says where a readable copy is on this machine right now (so the Train form
can say which datasets are usable offline before Start), and ``read(data_root)`` loads it.
:class:`TorchvisionDataset` adds what the entries torchvision can download share: the download into
the default data folder and the message that says what is missing, where it was looked for and how
to provide it.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
from pathlib import Path

from lab.datasets.tensors import Dataset, DatasetMissingError, default_data_dir

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DatasetInfo(abc.ABC):
    """One dataset: what it is and how to get it. ``info.offline or info.local_copy(root)`` means it
    can be loaded without a network right now. Fields are keywords, so a family can give defaults."""

    name: str
    label: str
    class_names: tuple[str, ...]
    image_size: int
    channels: int
    source: str  # one sentence: where the files come from
    suggested_model: str
    offline: bool  # bundled with an installed package: never needs a download
    # the train split's per-channel (mean, std) of pixels / 255, as Dataset computes them: a run's images can
    # be normalised (for Grad-CAM, uploads) without loading the dataset; a test checks them against the data
    train_statistics: tuple[tuple[float, ...], tuple[float, ...]]
    foreground_known: bool = False  # a black background: nonzero pixels are the object (object mass)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @abc.abstractmethod
    def local_copy(self, data_root: str | None = None) -> Path | None:
        """Where a local copy is right now: in ``data_root`` when given, else in the default places;
        None if there is none."""

    @abc.abstractmethod
    def read(self, data_root: str | None = None) -> Dataset:
        """Read the dataset from its local copy, downloading it first when there is none and no
        ``data_root`` was given. Uncached: :func:`lab.datasets.load_dataset` keeps one copy per process."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class TorchvisionDataset(DatasetInfo):
    """An entry that torchvision can download: ``torchvision_class`` names its dataset class."""

    torchvision_class: str
    offline: bool = False

    @abc.abstractmethod
    def missing_what(self) -> str:
        """The files that were not found, as the start of a sentence ("the four IDX files ...")."""

    @abc.abstractmethod
    def missing_remedy(self) -> str:
        """One or two sentences: where to download the files and where to put them."""

    def missing(self, looked: list[Path], downloaded: bool) -> DatasetMissingError:
        """The error for a dataset found in none of the folders ``looked`` (and, if ``downloaded``,
        whose download failed)."""
        tried = " and could not be downloaded (no network?)" if downloaded else ""
        where = ", ".join(str(folder) for folder in looked)
        return DatasetMissingError(
            f"{self.name}: {self.missing_what()} were not found in {where}{tried}. {self.missing_remedy()}"
        )

    def download(self, looked: list[Path]) -> None:
        """Let torchvision download both splits into the default data folder (it prints progress); any
        failure is one clear :class:`DatasetMissingError` that also names the folders ``looked`` in."""
        import torchvision

        root = default_data_dir()
        log.info("%s: no local copy; downloading into %s", self.name, root)
        cls = getattr(torchvision.datasets, self.torchvision_class)
        try:
            root.mkdir(parents=True, exist_ok=True)
            for train in (True, False):
                cls(str(root), train=train, download=True)
        except Exception as err:  # network errors come in many types (URLError, HTTPError, OSError, RuntimeError)
            reason = (str(err).strip().splitlines() or [""])[0]
            message = f"{self.missing(looked, downloaded=True)} (download error: {type(err).__name__}: {reason})"
            raise DatasetMissingError(message) from None


def existing_root(data_root: str) -> Path:
    """``data_root`` as a Path, or a :class:`DatasetMissingError` naming it if it is not a folder."""
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise DatasetMissingError(
            f"data_root: {root} is not a folder on this machine; choose an existing folder or leave it empty"
        )
    return root
