"""The shipped Fashion-MNIST example on a server without Fashion-MNIST (an empty data folder, Debian's copy
out of reach, no network): every page draws from the runs' own files and none tries to load the dataset."""

from __future__ import annotations

import pytest

from lab import datasets
from tests.apptest import app_reads, open_page

EXAMPLE = "example-fashion-3d"
PAGES = ["pages/features.py", "pages/angles.py", "pages/gradcam.py", "pages/compare.py"]


@pytest.fixture(scope="module")
def no_fashion(tmp_path_factory):
    entry = datasets.info("fashion-mnist")
    folders = entry.extra_folders
    object.__setattr__(entry, "extra_folders", ())  # the registry entry is frozen; restored below
    data = tmp_path_factory.mktemp("empty-data")
    root = tmp_path_factory.mktemp("offline-runs")
    try:
        with app_reads(root, LOSSLENS_DATA_DIR=str(data), LOSSLENS_CACHE_DIR=str(root.parent / "cache")):
            yield data
    finally:
        object.__setattr__(entry, "extra_folders", folders)


@pytest.mark.parametrize("page", PAGES)
def test_each_page_of_the_example_draws_without_its_dataset(no_fashion, page):
    app = open_page(page, experiment=EXAMPLE)
    assert not app.error, [e.value for e in app.error]
    assert not any(no_fashion.iterdir()), "a page tried to load or download the dataset"
