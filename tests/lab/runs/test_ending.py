"""Runs nothing would end: one another machine left training, one whose status.json went missing. The
operator ends them with ``python -m lab end`` and deletes them with ``python -m lab delete``; the owner
gets a lost run back when its experiment's other runs name the owner."""

from __future__ import annotations

import json

import pytest

from lab.cli.main import main
from lab.runs.store import RunStore
from lab.settings.config import RunConfig

OWNER = "0123456789abcdef0123456789abcdef"


def fabricate(store: RunStore, experiment: str, status: str = "finished", owner: str = OWNER) -> str:
    writer = store.create(RunConfig(experiment=experiment, epochs=3), owner=owner)
    writer.set_status(status, message="done" if status == "finished" else "training")
    return writer.run_id


def left_by_another_machine(store: RunStore, run_id: str) -> None:
    path = store.run_dir(run_id) / "status.json"
    status = json.loads(path.read_text())
    path.write_text(json.dumps({**status, "status": "running", "host": "a-machine-long-gone", "pid": 4242}))


def lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_a_run_another_machine_left_training_is_ended_then_deleted(tmp_path, capsys):
    store = RunStore(tmp_path)
    done, stuck = fabricate(store, "exp"), fabricate(store, "exp")
    left_by_another_machine(store, stuck)
    assert store.load(stuck).state == "elsewhere"
    assert main(["delete", "exp", "--yes", "--runs-dir", str(tmp_path)]) == 2
    assert "still training" in capsys.readouterr().err, "the store keeps a run that may still be written"

    assert main(["end", "exp", "--runs-dir", str(tmp_path)]) == 0
    (ended,) = lines(capsys)
    assert ended["run_id"] == stuck and ended["status"] == "interrupted" and ended["owner_known"]
    assert "a-machine-long-gone" in ended["message"] and "operator" in ended["message"]
    assert store.load(stuck).owner == OWNER and store.load(done).state == "finished"

    assert main(["delete", "exp", "--runs-dir", str(tmp_path)]) == 2
    assert "--yes" in capsys.readouterr().err
    assert main(["delete", "exp", "--yes", "--runs-dir", str(tmp_path)]) == 0
    assert lines(capsys) == [{"experiment": "exp", "deleted": 2}]
    assert store.run_ids() == []


def test_a_run_whose_status_went_missing_is_given_back_to_its_owner(tmp_path, capsys):
    store = RunStore(tmp_path)
    fabricate(store, "private")
    lost = fabricate(store, "private")
    (store.run_dir(lost) / "status.json").unlink()
    assert store.load(lost).owner is None
    assert lost not in [r.run_id for r in store.experiments(owner=OWNER)["private"]], "invisible to its owner"

    assert main(["end", lost, "--runs-dir", str(tmp_path)]) == 0
    (ended,) = lines(capsys)
    assert ended["status"] == "interrupted" and ended["owner_known"]
    assert lost in [r.run_id for r in store.experiments(owner=OWNER)["private"]], "its owner sees it again"
    assert main(["end", lost, "--runs-dir", str(tmp_path)]) == 2
    assert "already ended" in capsys.readouterr().err


def test_the_owner_stays_unknown_when_the_other_runs_disagree_and_the_operator_deletes_it(tmp_path, capsys):
    store = RunStore(tmp_path)
    fabricate(store, "mixed", owner=OWNER)
    fabricate(store, "mixed", owner="f" * 32)
    lost = fabricate(store, "mixed")
    (store.run_dir(lost) / "status.json").unlink()
    assert main(["end", "mixed", "--runs-dir", str(tmp_path)]) == 0
    assert lines(capsys)[0]["owner_known"] is False
    assert main(["delete", "mixed", "--yes", "--runs-dir", str(tmp_path)]) == 0
    assert lines(capsys) == [{"experiment": "mixed", "deleted": 3}]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["end", "nothing-here"], "no run or experiment 'nothing-here'"),
        (["delete", "nothing-here", "--yes"], "no experiment 'nothing-here'"),
    ],
)
def test_unknown_names_are_one_error_line(tmp_path, capsys, argv, message):
    fabricate(RunStore(tmp_path), "exp")
    assert main([*argv, "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and err.count("\n") == 1


def test_a_run_training_here_is_not_ended_behind_its_trainer(tmp_path, capsys):
    store = RunStore(tmp_path)
    training = fabricate(store, "live", status="running")  # this very process writes it: alive
    assert main(["end", training, "--runs-dir", str(tmp_path)]) == 2
    assert "training in process" in capsys.readouterr().err
    assert main(["end", "live", "--runs-dir", str(tmp_path)]) == 2
    assert store.load(training).state == "running"


def test_the_owner_ends_in_the_sidebar_the_runs_another_machine_left_training(tmp_path):
    from tests.apptest import app_reads, open_page
    from ui import session

    credential = "ending-test-browser".ljust(43, "0")  # as the session keeps it once the cookie is checked
    store = RunStore(tmp_path / "runs")
    fabricate(store, "mine", status="failed", owner=session.owner_of(credential))  # no files to draw
    stuck = fabricate(store, "mine", owner=session.owner_of(credential))
    left_by_another_machine(store, stuck)
    with app_reads(store.root, LOSSLENS_CACHE_DIR=str(tmp_path / "cache")):
        app = open_page("pages/learn.py", experiment="mine", credential=credential)
        assert not [b for b in app.sidebar.button if b.label == "Delete"], "no delete while it may be written"
        app.sidebar.button(key="end_elsewhere").click().run()
        assert not app.exception
        assert store.load(stuck).state == "interrupted" and store.load(stuck).owner == session.owner_of(credential)
        assert [b for b in app.sidebar.button if b.label == "Delete"], "now the experiment can be deleted"
        stranger = open_page("pages/learn.py", experiment="mine", credential="someone-else".ljust(43, "1"))
        assert not [b for b in stranger.sidebar.button if b.key == "end_elsewhere"]
