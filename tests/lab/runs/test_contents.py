"""The checks of a run's JSON files: mistyped status values are the run's problem and the accessors stay typed; a
malformed metrics line keeps the epochs before it."""

from __future__ import annotations

import json

from lab.runs import contents
from lab.runs.store import RunStore
from tests.lab.runs.planting import OWNER, edit_status, make_run


def test_mistyped_status_values_are_per_run_problems_and_the_accessors_stay_typed(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store)
    edit_status(store, run_id, updated=None, test_acc="97%", started="yesterday", message=["a", "list"])
    record = store.load(run_id)
    for field in ("updated must be a number", "test_acc must be a number", "started must be a number"):
        assert field in record.error
    assert "message must be text" in record.error and "97%" not in record.error, "file values are never quoted"
    assert record.updated == 0.0 and record.test_acc is None and record.started is None and record.message == ""
    assert record.status.get("test_acc", 0.0) == 0.0, "pages reading the status dict get their defaults"
    assert record.summary()["test_acc"] is None
    assert list(store.experiments(owner=OWNER)) == ["exp"]


def test_a_malformed_metrics_line_keeps_the_epochs_before_it(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store)
    lines = [{"epoch": 1, "test_acc": 0.5}, {"epoch": 2, "test_acc": "high"}, {"epoch": 3, "test_acc": 0.7}]
    (tmp_path / run_id / contents.METRICS).write_text("".join(json.dumps(line) + "\n" for line in lines))
    record = store.load(run_id)
    assert record.metrics == lines[:1]
    assert "metrics.jsonl is unreadable (line 2: test_acc must be a number, it is text)" in record.error
