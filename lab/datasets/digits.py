"""scikit-learn's bundled 8x8 digits, split 80/20 with a fixed seed: small, always offline."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np

from lab.datasets.base import DatasetInfo
from lab.datasets.registry import register
from lab.datasets.tensors import Dataset

DIGIT_CLASSES = tuple(str(d) for d in range(10))


@dataclasses.dataclass(frozen=True, kw_only=True)
class BundledDigits(DatasetInfo):
    def local_copy(self, data_root: str | None = None) -> Path | None:
        """The file scikit-learn ships (found without importing scikit-learn, which is slow); ``data_root``
        does not apply."""
        spec = importlib.util.find_spec("sklearn")
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
        return path if path.is_file() else None

    def read(self, data_root: str | None = None) -> Dataset:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        bunch = load_digits()
        images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
        train_x, test_x, train_y, test_y = train_test_split(
            images, bunch.target, test_size=0.2, random_state=0, stratify=bunch.target
        )
        return Dataset.from_arrays(
            self.name, train_x, train_y, test_x, test_y, self.class_names, "scikit-learn bundled digits"
        )


register(
    BundledDigits(
        name="digits",
        label="Digits 8x8",
        class_names=DIGIT_CLASSES,
        image_size=8,
        channels=1,
        source="scikit-learn's bundled 8x8 handwritten digits (1,797 images), split 80/20 with a fixed seed.",
        suggested_model="small",
        offline=True,
        train_statistics=((0.305433688785187,), (0.37595716498559817,)),
        foreground_known=True,
    )
)
