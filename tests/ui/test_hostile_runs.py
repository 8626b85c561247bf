"""Every page stays up when the runs folder holds hostile run files: a FIFO (reading it would block), a
symbolic link to /dev/zero (reading it would never end) and a 100,000-deep JSON file (parsing it would
overflow the stack). The good run of the same experiment still shows. (The broken runs' owner cannot be read, so
no browser is shown them; ``lab list`` names each one's problem: tests/lab/runs/test_io.py.)"""

from __future__ import annotations

import os

import pytest

from lab.runs import contents
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.training.loop import train_run
from tests.apptest import app_reads, open_page

EXPERIMENT = "hostile-neighbours"
PAGES = ["pages/features.py", "pages/angles.py", "pages/gradcam.py", "pages/compare.py", "pages/train.py"]


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-runs")
    store = RunStore(root)
    train_run(RunConfig(experiment=EXPERIMENT, epochs=1, train_limit=200, snapshot_points=50), store)
    hostile = [store.create(RunConfig(experiment=EXPERIMENT, loss=loss)).run_dir for loss in ("amc", "opl", "lmd")]
    for writer_dir in hostile:
        (writer_dir / contents.STATUS).unlink(missing_ok=True)
    os.mkfifo(hostile[0] / contents.STATUS)
    (hostile[1] / contents.STATUS).symlink_to("/dev/zero")
    (hostile[2] / contents.CONFIG).write_text("[" * 100_000 + "]" * 100_000)
    with app_reads(root, LOSSLENS_CACHE_DIR=str(tmp_path_factory.mktemp("hostile-cache"))):
        yield root


@pytest.mark.parametrize("page", PAGES)
def test_every_page_stays_up_beside_a_fifo_a_dev_zero_link_and_deep_json(runs_dir, page):
    app = open_page(page, experiment=EXPERIMENT)
    if page in ("pages/features.py", "pages/angles.py"):
        assert app.get("plotly_chart"), "the good run is drawn"
