"""A count reads as English: one rule (lab.shown_text.count_text) gives "1 run" and "2 runs" wherever the app
counts, and deleting a one-run experiment says "Deleted 1 run."."""

from __future__ import annotations

from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.shown_text import count_text
from lab.training.loop import train_run
from tests.apptest import app_reads, open_page
from ui import session

CREDENTIAL = "counting-browser".ljust(43, "0")


def test_one_is_singular_and_every_other_count_plural():
    assert [count_text(n, "run") for n in (0, 1, 2, 1_000)] == ["0 runs", "1 run", "2 runs", "1,000 runs"]
    assert count_text(1, "loss", "losses") == "1 loss" and count_text(3, "loss", "losses") == "3 losses"


def test_deleting_a_one_run_experiment_says_one_run(tmp_path):
    store = RunStore(tmp_path)
    config = RunConfig(experiment="one-run", epochs=1, train_limit=200, snapshot_points=50, eval_images=100)
    train_run(config, store, owner=session.owner_of(CREDENTIAL))
    with app_reads(tmp_path):
        app = open_page("pages/train.py", experiment="one-run", credential=CREDENTIAL)
        assert "1 loss" in app.sidebar.selectbox[0].format_func("one-run")
        app.button(key="confirm_delete").click().run()
    assert [toast.value for toast in app.toast] == ["Deleted 1 run."]
    assert "one-run" not in store.experiments()
