"""The run store: runs written and read back, safe ids, interrupted, corrupt and untrusted runs reported per run,
listing that reads only config and status, ownership that a broken file cannot give away, partial writes
cleaned up, and deletes that are all or nothing."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

import pytest

from lab.runs import contents
from lab.runs import io as run_io
from lab.runs import store as runstore
from lab.runs.io import write_json_atomic
from lab.runs.store import RunStore, RunStoreError
from lab.settings.config import RunConfig
from tests.conftest import run_cli
from tests.lab.runs.planting import OWNER, edit_status, make_run, plant


def test_a_written_run_reads_back(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store, loss="softmax", experiment="exp-1")
    record = store.load(run_id)
    assert record.error is None and record.state == "finished"
    assert record.config == RunConfig(loss="softmax", experiment="exp-1")
    assert record.metrics == [{"epoch": 1, "test_acc": 0.5}]
    assert store.load_features(run_id).test_features.shape == (4, 2)
    assert list(store.experiments()) == ["exp-1"]
    summary = record.summary()
    assert summary["status"] == "finished" and summary["test_acc"] == 0.5 and summary["run_id"] == run_id


def test_run_ids_are_unique_and_leave_no_temporary_files(tmp_path):
    store = RunStore(tmp_path)
    ids = {make_run(store) for _ in range(3)}
    assert len(ids) == 3
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert not leftovers


@pytest.mark.parametrize("bad_id", ["../etc", "..", "/abs/path", "a/b", "", ".hidden", "x" * 200, None])
def test_run_ids_cannot_leave_the_runs_folder(tmp_path, bad_id):
    with pytest.raises(RunStoreError, match="not a valid run name"):
        RunStore(tmp_path).run_dir(bad_id)


def test_a_running_run_whose_process_is_gone_is_interrupted(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create(RunConfig())
    status = json.loads((writer.run_dir / "status.json").read_text())
    write_json_atomic(writer.run_dir / "status.json", {**status, "pid": 2**22 + 12345})
    assert store.load(writer.run_id).state == "interrupted"
    # our own process is alive: a run it writes is still running
    write_json_atomic(writer.run_dir / "status.json", {**status, "pid": os.getpid()})
    assert store.load(writer.run_id).state == "running"


def test_corrupt_files_are_reported_per_run_and_other_runs_still_load(tmp_path):
    store = RunStore(tmp_path)
    good = make_run(store)
    bad = make_run(store)
    (tmp_path / bad / "metrics.jsonl").write_text('{"epoch": 1, "test_')
    (tmp_path / bad / "features.safetensors").write_bytes(b"\x00garbage")
    records = {r.run_id: r for r in store.list()}
    assert records[good].error is None and records[good].metrics == [{"epoch": 1, "test_acc": 0.5}]
    assert records[bad].metrics == [] and "metrics.jsonl is unreadable" in records[bad].error  # read when used
    with pytest.raises(RunStoreError, match="not a valid safetensors file"):
        store.load_features(bad)


def test_a_config_with_unknown_fields_is_a_per_run_error(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store)
    path = tmp_path / run_id / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "extra": 1}))
    record = store.load(run_id)
    assert record.config is None and "unknown field extra" in record.error


def test_missing_weights_file_is_a_clear_error(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store)
    with pytest.raises(RunStoreError, match="weights.safetensors is missing"):
        store.load_weights(run_id)


def test_folders_that_are_not_runs_are_ignored(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "stray.txt").write_text("hi")
    assert RunStore(tmp_path).list() == []
    assert RunStore(tmp_path / "absent").list() == []


def test_an_experiment_lists_its_runs_in_the_order_they_started_not_by_id(tmp_path):
    store = RunStore(tmp_path)
    first = make_run(store, loss="softmax", experiment="exp")
    second = make_run(store, loss="amc", experiment="exp")
    os.rename(tmp_path / first, tmp_path / "z-softmax")  # ids that sort the other way, like the shipped example's
    os.rename(tmp_path / second, tmp_path / "a-amc")
    broken = make_run(store, loss="opl", experiment="exp")
    status = json.loads((tmp_path / broken / "status.json").read_text())
    write_json_atomic(tmp_path / broken / "status.json", {**status, "started": "yesterday"})
    assert [r.run_id for r in store.experiments()["exp"]] == ["z-softmax", "a-amc", broken]


def test_experiments_come_newest_first_by_start_time_not_by_name(tmp_path):
    store = RunStore(tmp_path)
    make_run(store, loss="softmax", experiment="example-digits-2d")  # a name that sorts after any time stamp
    time.sleep(0.01)
    make_run(store, loss="softmax", experiment="20261201-120000-digits-2d")
    time.sleep(0.01)
    make_run(store, loss="amc", experiment="20261201-110000-digits-2d")  # an older name, started last
    unknown = make_run(store, loss="opl", experiment="no-start-time")
    status = json.loads((tmp_path / unknown / "status.json").read_text())
    write_json_atomic(tmp_path / unknown / "status.json", {**status, "started": None})
    assert list(store.experiments()) == [
        "20261201-110000-digits-2d",
        "20261201-120000-digits-2d",
        "example-digits-2d",
        "no-start-time",
    ]


# ---------------------------------------------------------------- partial writes


def _leftover(run_dir: Path, age_seconds: float) -> Path:
    path = run_dir / f".{contents.FEATURES}.abc123.tmp"
    path.write_bytes(b"half a file")
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    return path


def test_an_interrupted_runs_partial_writes_are_deleted_when_it_is_read(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create(RunConfig())
    status = json.loads((writer.run_dir / contents.STATUS).read_text())
    write_json_atomic(writer.run_dir / contents.STATUS, {**status, "pid": 2**22 + 12345})  # a writer that is gone
    stale, fresh = _leftover(writer.run_dir, 3600), _leftover(writer.run_dir, 0)
    fresh = fresh.rename(fresh.with_name(f".{contents.STATUS}.def456.tmp"))
    assert [r.state for r in store.list()] == ["interrupted"]
    assert not stale.exists() and not fresh.exists(), "the writer was on this host and has ended: all are leftovers"
    assert (writer.run_dir / contents.CONFIG).exists()


def test_only_stale_partial_writes_go_when_the_writer_was_on_another_host(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create(RunConfig())
    status = json.loads((writer.run_dir / contents.STATUS).read_text())
    write_json_atomic(writer.run_dir / contents.STATUS, {**status, "host": "another-machine"})
    stale, fresh = _leftover(writer.run_dir, 3600), _leftover(writer.run_dir, 0)
    fresh = fresh.rename(fresh.with_name(f".{contents.STATUS}.def456.tmp"))
    assert [r.state for r in store.list()] == ["elsewhere"]
    assert not stale.exists(), "a partial write an hour old is a leftover"
    assert fresh.exists(), "a partial write from the last minute may belong to the writer on the other host"


def test_a_live_writers_partial_writes_are_kept(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create(RunConfig())  # this process is the writer, and it is alive
    old = _leftover(writer.run_dir, 3600)
    assert store.load(writer.run_id).state == "running"
    assert old.exists()


# ---------------------------------------------------------------- listing reads config and status only


def test_listing_runs_reads_no_metrics_and_the_runs_that_need_them_read_them(tmp_path):
    store = RunStore(tmp_path)
    run_id = plant(store)
    metrics = tmp_path / run_id / contents.METRICS
    os.mkfifo(metrics)  # whoever opens it for its contents gets a per-run error, not a hang
    (record,) = store.list()
    assert record.error is None and record.summary()["epochs_done"] == 2, "the status says how far it went"
    assert record.metrics == [] and "metrics.jsonl is not a plain file" in record.error, "read when used"
    listed = run_cli("list", "--runs-dir", str(tmp_path), timeout=120)
    assert listed.returncode == 0 and json.loads(listed.stdout)["message"] == "done", listed.stderr


def test_an_unchanged_config_and_status_are_not_parsed_again(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    ids = [plant(store) for _ in range(3)]
    store.list()
    parsed = []
    real = contents.parse_json
    monkeypatch.setattr(contents, "parse_json", lambda data: parsed.append(data) or real(data))
    assert [r.state for r in store.list()] == ["finished"] * 3 and parsed == []
    status = tmp_path / ids[1] / contents.STATUS
    run_io.write_json_atomic(status, {**json.loads(status.read_text()), "message": "edited"})
    assert [r.message for r in store.list()] == ["done", "edited", "done"] and len(parsed) == 1


# ---------------------------------------------------------------- the trash, and a delete that leaves files


def test_the_trash_is_emptied_when_the_runs_folder_is_first_opened(tmp_path):
    leftover = tmp_path / ".trash-killed"
    (leftover / "old-run").mkdir(parents=True)
    (leftover / "old-run" / contents.FEATURES).write_bytes(b"x" * 1000)
    os.utime(leftover, (time.time() - 3600, time.time() - 3600))
    RunStore(tmp_path)
    assert not leftover.exists()


def test_a_delete_whose_files_cannot_be_removed_says_so(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    writer = store.create(RunConfig(experiment="exp"), owner=OWNER)
    writer.set_status("finished", message="done")
    unlink = os.unlink

    def refuse_status(path, *args, **kwargs):
        if os.fspath(path) == contents.STATUS:
            raise PermissionError(errno.EPERM, "Operation not permitted", path)
        unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", refuse_status)
    with pytest.raises(
        RunStoreError, match=r"could not all be removed \(.*status.json: Operation not permitted\).*\.trash-"
    ):
        store.delete_experiment("exp", OWNER)
    monkeypatch.undo()
    assert store.list() == []
    assert RunStore(tmp_path).empty_trash(older_than=0) == [] and list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- run folders as untrusted input


def test_a_future_start_time_does_not_make_an_experiment_the_newest(tmp_path):
    store = RunStore(tmp_path)
    make_run(store, experiment="honest")
    planted = make_run(store, owner="", experiment="planted")
    edit_status(store, planted, started=time.time() + 365 * 86400)
    assert list(store.experiments(owner=OWNER)) == ["honest", "planted"]


def test_a_run_with_an_unusable_config_stays_in_its_experiment(tmp_path):
    store = RunStore(tmp_path)
    make_run(store)
    broken = make_run(store)
    path = tmp_path / broken / contents.CONFIG
    path.write_text(json.dumps({**json.loads(path.read_text()), "epochs": "many"}))
    groups = store.experiments(owner=OWNER)
    assert list(groups) == ["exp"] and len(groups["exp"]) == 2
    assert next(r for r in groups["exp"] if r.run_id == broken).config is None


def test_a_symlinked_run_folder_is_reported_not_followed(tmp_path):
    runs, outside = tmp_path / "runs", tmp_path / "outside"
    store = RunStore(runs)
    run_id = make_run(RunStore(outside))
    runs.mkdir()
    (runs / "linked").symlink_to(outside / run_id)
    assert store.run_ids() == ["linked"]
    record = store.load("linked")
    assert record.config is None and "symbolic link" in record.error and record.owner is None
    with pytest.raises(RunStoreError, match="symbolic link"):
        store.read_files("linked")


# ---------------------------------------------------------------- ownership


def test_a_run_without_a_readable_status_has_no_owner_and_is_never_shared(tmp_path):
    store = RunStore(tmp_path)
    missing, garbled = make_run(store), make_run(store)
    (tmp_path / missing / contents.STATUS).unlink()
    (tmp_path / garbled / contents.STATUS).write_text("{not json")
    for run_id in (missing, garbled):
        record = store.load(run_id)
        assert record.owner is None and record.error
    assert store.experiments(owner=OWNER) == {} and store.experiments(owner="bobsecret0002") == {}
    assert [r.run_id for r in store.experiments()["exp"]] == sorted([missing, garbled])  # the CLI lists them
    assert store.delete_experiment("exp", OWNER) == 0 and len(store.list()) == 2


def test_a_run_another_machine_is_training_is_running_elsewhere_not_interrupted(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create(RunConfig(experiment="exp"), owner=OWNER)
    edit_status(store, writer.run_id, host="another-machine", pid=1)
    record = store.load(writer.run_id)
    assert record.state == runstore.ELSEWHERE and record.message.startswith("running elsewhere or interrupted")
    with pytest.raises(RunStoreError, match="still training"):
        store.delete_experiment("exp", OWNER)


# ---------------------------------------------------------------- run ids and deleting


@pytest.mark.parametrize("bad_id", ["x\n", "run-1\n", "a\x00b"])
def test_a_run_id_must_match_in_full(tmp_path, bad_id):
    with pytest.raises(RunStoreError, match="not a valid run name"):
        RunStore(tmp_path).run_dir(bad_id)


def test_a_folder_named_with_a_trailing_newline_is_not_a_run(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store)
    os.rename(tmp_path / run_id, tmp_path / "x\n")
    assert store.run_ids() == [] and store.list() == []


def test_deleting_an_experiment_never_follows_a_symlinked_run_folder(tmp_path):
    runs, outside = tmp_path / "runs", tmp_path / "outside"
    store = RunStore(runs)
    mine = [make_run(store), make_run(store)]
    target = make_run(RunStore(outside))  # the same owner and experiment, outside the runs folder
    (runs / "zz-linked").symlink_to(outside / target)
    assert store.delete_experiment("exp", OWNER) == 2
    assert not any((runs / run_id).exists() for run_id in mine)
    assert (outside / target / contents.CONFIG).is_file() and (outside / target / contents.METRICS).is_file()
    assert [p.name for p in runs.iterdir()] == ["zz-linked"], "no trash folder is left behind"


def test_a_delete_that_cannot_move_every_run_deletes_nothing(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    first, second = make_run(store), make_run(store)
    rename = os.rename

    def refuse_second(source, destination):
        if Path(source).name == second:
            raise PermissionError(errno.EACCES, "Permission denied", str(source))
        rename(source, destination)

    monkeypatch.setattr(os, "rename", refuse_second)
    with pytest.raises(RunStoreError, match=f"could not delete run {second} .*nothing was deleted"):
        store.delete_experiment("exp", OWNER)
    monkeypatch.undo()
    assert sorted(r.run_id for r in store.list()) == sorted([first, second])
    assert all(r.error is None for r in store.list())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first, second])


def test_a_trash_folder_left_by_a_killed_delete_is_removed_by_the_next_delete(tmp_path):
    store = RunStore(tmp_path)
    make_run(store, experiment="keep")
    leftover = tmp_path / ".trash-abc"
    (leftover / "old-run").mkdir(parents=True)
    os.utime(leftover, (time.time() - 3600, time.time() - 3600))
    assert store.delete_experiment("nothing-here", OWNER) == 0
    assert not leftover.exists()


# ---------------------------------------------------------------- a runs folder that cannot be written


def test_a_store_says_why_it_cannot_be_written(tmp_path, monkeypatch):
    assert RunStore(tmp_path / "new").write_problem() is None and (tmp_path / "new").is_dir()
    (tmp_path / "file").write_text("")
    assert RunStore(tmp_path / "file").write_problem().startswith(f"{tmp_path / 'file'} is not a folder")

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path))

    monkeypatch.setattr(runstore.tempfile, "TemporaryFile", read_only)
    assert RunStore(tmp_path).write_problem() == (
        f"{tmp_path} is on a read-only file system: choose a folder you can write to"
    )
