"""The core half of security: run files as untrusted input, ownership that a broken file cannot give away,
run ids, atomic deletes, a full disk during training, bounded jobs and one-line CLI errors."""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from lab.cli.main import main
from lab.reports import export
from lab.runs import contents
from lab.runs import io as run_io
from lab.runs import store as runstore
from lab.runs import writer as run_writer
from lab.runs.io import RunWriteError, describe_os_error, write_json_atomic
from lab.runs.store import RunStore, RunStoreError
from lab.settings.config import RunConfig
from lab.training import jobs
from lab.training.loop import train_run

ROOT = Path(__file__).resolve().parents[3]
OWNER = "alicesecret0001"
TINY = {"epochs": 1, "train_limit": 64, "snapshot_points": 10}


def make_run(store: RunStore, owner: str = OWNER, experiment: str = "exp", **status: object) -> str:
    writer = store.create(RunConfig(experiment=experiment), owner=owner)
    writer.write_metrics([{"epoch": 1, "test_acc": 0.5}])
    writer.set_status("finished", message="done", test_acc=0.5, **status)
    return writer.run_id


def edit_status(store: RunStore, run_id: str, **changes: object) -> None:
    path = store.run_dir(run_id) / contents.STATUS
    write_json_atomic(path, {**json.loads(path.read_text()), **changes})


def full_disk(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """From now on every run-file write fails as on a full disk; returns the count of attempts."""
    attempts = {"writes": 0}

    def no_space(path: Path, *args: object, **kwargs: object) -> None:
        attempts["writes"] += 1
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    for module in (run_io, runstore, run_writer):
        monkeypatch.setattr(module, "write_atomic", no_space)
    monkeypatch.setattr(run_writer, "save_tensors_atomic", no_space)
    return attempts


# ---------------------------------------------------------------- run files are untrusted input


def test_lab_list_stays_up_with_a_fifo_a_dev_zero_link_and_deep_or_long_json(tmp_path):
    store = RunStore(tmp_path)
    good = make_run(store)
    fifo, zero, deep, digits, big = (make_run(store) for _ in range(5))
    (tmp_path / fifo / contents.STATUS).unlink()
    os.mkfifo(tmp_path / fifo / contents.STATUS)
    (tmp_path / zero / contents.STATUS).unlink()
    (tmp_path / zero / contents.STATUS).symlink_to("/dev/zero")
    (tmp_path / deep / contents.CONFIG).write_text("[" * 100_000 + "]" * 100_000)
    edit_status(store, digits, started=0)
    status = (tmp_path / digits / contents.STATUS).read_text().replace('"started": 0', '"started": ' + "9" * 400)
    (tmp_path / digits / contents.STATUS).write_text(status)
    (tmp_path / big / contents.STATUS).write_bytes(b" " * (contents.MAX_BYTES[contents.STATUS] + 1))

    result = subprocess.run(
        [sys.executable, "-m", "lab", "list", "--runs-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    listed = {line["run_id"]: line for line in map(json.loads, result.stdout.splitlines())}
    assert set(listed) == {good, fifo, zero, deep, digits, big}
    assert listed[good]["status"] == "finished" and listed[good]["message"] == "done"
    assert "status.json is not a plain file" in listed[fifo]["message"]
    assert "status.json is a symbolic link" in listed[zero]["message"]
    assert "config.json is unreadable" in listed[deep]["message"] and "nested too deeply" in listed[deep]["message"]
    assert "a number 400 characters long" in listed[digits]["message"]
    assert "more than the 1 MB a run's status.json may hold" in listed[big]["message"]


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


def test_an_export_and_the_logs_never_hold_the_owner(tmp_path, caplog):
    store = RunStore(tmp_path)
    with caplog.at_level(logging.DEBUG):
        record = train_run(RunConfig(**TINY), store, owner=OWNER)
    assert record.state == "finished" and record.owner == OWNER
    assert not [r for r in caplog.records if OWNER in r.getMessage()]
    with zipfile.ZipFile(io.BytesIO(export.run_zip(store, record.run_id))) as archive:
        archived = b"".join(archive.read(name) for name in archive.namelist())
        status = json.loads(archive.read(f"{record.run_id}/{contents.STATUS}"))
    assert OWNER.encode() not in archived
    assert status["owner"] == "" and not {"pid", "host", "traceback"} & set(status)


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


# ---------------------------------------------------------------- a full disk


def test_a_failed_status_write_is_retried_once_and_the_last_good_status_is_kept(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    writer = store.create(RunConfig(), owner=OWNER)
    writer.set_status("running", message="epoch 1 of 2", epoch=1)
    attempts = full_disk(monkeypatch)
    with pytest.raises(RunWriteError, match=f"disk full at {writer.run_dir}"):
        writer.set_status("running", message="epoch 2 of 2", epoch=2)
    assert attempts["writes"] == 2
    on_disk = json.loads((writer.run_dir / contents.STATUS).read_text())
    assert on_disk["epoch"] == 1 and on_disk["owner"] == OWNER
    record = store.load(writer.run_id)
    assert record.state == "failed" and record.message.startswith(f"disk full at {writer.run_dir}")


def test_a_run_whose_disk_fills_up_ends_failed_and_can_be_deleted(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    reports = []
    real_write = run_io.write_atomic

    def fill_after_the_first_epoch(path, data):
        if path.name == contents.METRICS:  # the end of epoch 1: from here on, nothing can be written
            full_disk(monkeypatch)
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, data)

    for module in (run_io, runstore, run_writer):
        monkeypatch.setattr(module, "write_atomic", fill_after_the_first_epoch)
    record = train_run(RunConfig(experiment="full", **TINY), store, owner=OWNER, on_progress=reports.append)
    assert record.state == "failed" and record.message == f"disk full at {record.run_dir}: " + (
        "free some space or choose a folder on another disk"
    )
    assert json.loads((record.run_dir / contents.STATUS).read_text())["status"] == "running", "the stale file"
    assert (reports[-1].status, reports[-1].message) == ("failed", record.message)
    monkeypatch.undo()
    assert store.delete_experiment("full", OWNER) == 1 and store.list() == []


def test_creating_a_run_on_a_full_disk_leaves_no_half_made_folder(tmp_path, monkeypatch):
    full_disk(monkeypatch)
    with pytest.raises(RunWriteError, match=f"cannot create a run: disk full at {tmp_path}"):
        RunStore(tmp_path).create(RunConfig(), owner=OWNER)
    assert list(tmp_path.iterdir()) == []


def test_a_run_stopped_in_epoch_one_has_its_snapshot_file(tmp_path):
    stop = threading.Event()
    stop.set()
    record = train_run(RunConfig(**TINY), RunStore(tmp_path), stop=stop)
    assert record.state == "stopped" and record.message == "stopped by the user in epoch 1"
    store = RunStore(tmp_path)
    snapshots = store.load_snapshots(record.run_id)
    assert snapshots.epochs.tolist() == [0]
    snapshots.check_subset(store.load_features(record.run_id), record.run_id)


# ---------------------------------------------------------------- bounded jobs


@pytest.fixture
def fake_training(monkeypatch):
    """Jobs that train nothing: each waits until it is stopped or ``release`` is set."""
    release = threading.Event()

    def wait(configs, store, *, on_progress=None, stop=None, owner=""):
        while not (release.is_set() or stop.is_set()):
            time.sleep(0.005)
        return []

    monkeypatch.setattr(jobs, "train_experiment", wait)
    monkeypatch.setattr(jobs, "warm_up", lambda: None)
    yield release
    release.set()
    # Before the patches are undone: a job ending starts the next queued one, which must not train for real
    # (a daemon thread still in torch when the interpreter exits aborts it).
    names = ("losslens-training", "losslens-warm-up")
    deadline = time.monotonic() + 60
    while busy := [t for t in threading.enumerate() if t.name in names and t.is_alive()]:
        assert time.monotonic() < deadline, "jobs still running"
        busy[0].join(1)


def _wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_each_owner_may_queue_only_a_few_jobs(tmp_path, fake_training):
    manager = jobs.JobManager(RunStore(tmp_path), max_running=1)
    first = manager.submit([RunConfig()], OWNER)
    manager.submit([RunConfig()], OWNER)
    with pytest.raises(jobs.JobLimitError, match="You already have 2 trainings queued or running"):
        manager.submit([RunConfig()], OWNER)
    assert manager.submit([RunConfig()], "bobsecret0002")
    assert manager.stop(first, OWNER)
    _wait_until(lambda: manager.state(first) == "done")
    assert manager.submit([RunConfig()], OWNER), "a stopped job frees its owner's slot"


def test_the_server_queues_only_so_many_jobs_in_all(tmp_path, fake_training, monkeypatch):
    monkeypatch.setattr(jobs, "MAX_JOBS", 3)
    manager = jobs.JobManager(RunStore(tmp_path), max_running=1)
    for n in range(3):
        manager.submit([RunConfig()], f"owner{n:012d}")
    with pytest.raises(jobs.JobLimitError, match="This server already has 3 trainings queued or running"):
        manager.submit([RunConfig()], "latecomer0001")


def test_the_one_job_guard_and_stop_are_keyed_on_the_owner(tmp_path, fake_training):
    manager = jobs.JobManager(RunStore(tmp_path), max_running=1)
    assert manager.active_job(OWNER) == "" and manager.current_job(OWNER) == ""
    job_id = manager.submit([RunConfig()], OWNER)
    assert manager.active_job(OWNER) == job_id and manager.current_job(OWNER) == job_id
    assert manager.active_job("bobsecret0002") == "" and manager.get(job_id, "bobsecret0002") is None
    assert not manager.stop(job_id, "bobsecret0002") and manager.state(job_id) == "running"
    assert manager.stop(job_id, OWNER)
    _wait_until(lambda: manager.state(job_id) == "done")
    assert manager.active_job(OWNER) == "" and manager.current_job(OWNER) == job_id, "kept for the live view"


def test_finished_jobs_are_dropped_but_each_owners_last_one(tmp_path, fake_training, monkeypatch):
    fake_training.set()  # every job ends at once
    manager = jobs.JobManager(RunStore(tmp_path), max_running=1)
    ids = []
    for _ in range(3):
        ids.append(manager.submit([RunConfig()], OWNER))
        _wait_until(lambda: manager.state(ids[-1]) == "done")
    assert manager.jobs_of(OWNER) == ids[-1:]
    monkeypatch.setattr(jobs, "FINISHED_JOB_SECONDS", 0.0)
    assert manager.jobs_of(OWNER) == [] and manager.state(ids[-1]) == "done"


def test_jobs_of_survives_concurrent_submits(tmp_path, fake_training, monkeypatch):
    """Reproduces "dictionary changed size during iteration": readers list jobs while others submit."""
    fake_training.set()
    monkeypatch.setattr(jobs, "MAX_JOBS", 10**6, raising=False)
    monkeypatch.setattr(jobs, "MAX_NEWCOMER_JOBS", 10**6, raising=False)  # every submitter here is new
    monkeypatch.setattr(sys, "getswitchinterval", sys.getswitchinterval)  # restored below
    manager = jobs.JobManager(RunStore(tmp_path), max_running=64)
    errors: list[BaseException] = []
    done = threading.Event()

    def submit(worker: int) -> None:
        try:
            for n in range(60):
                manager.submit([], f"w{worker}n{n}")
        except BaseException as err:
            errors.append(err)

    def read() -> None:
        try:
            while not done.is_set():
                manager.jobs_of(OWNER)
        except BaseException as err:
            errors.append(err)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        readers = [threading.Thread(target=read) for _ in range(4)]
        writers = [threading.Thread(target=submit, args=(w,)) for w in range(8)]
        for thread in readers + writers:
            thread.start()
        for thread in writers:
            thread.join(120)
        done.set()
        for thread in readers:
            thread.join(30)
    finally:
        sys.setswitchinterval(interval)
    assert errors == []


# ---------------------------------------------------------------- the command line


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_a_runs_folder_that_is_a_file_is_one_error_line(tmp_path, capsys):
    not_a_folder = tmp_path / "runs"
    not_a_folder.write_text("")
    assert main(["list", "--runs-dir", str(not_a_folder)]) == 2
    assert f"{not_a_folder} is not a folder" in _one_error_line(capsys)
    args = ["train", "--epochs", "1", "--train-limit", "64", "--runs-dir", str(not_a_folder)]
    assert main(args) == 2
    assert f"cannot create a run: {not_a_folder} is not a folder" in _one_error_line(capsys)


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


def test_a_full_disk_at_the_start_of_training_is_one_error_line(tmp_path, monkeypatch, capsys):
    full_disk(monkeypatch)
    assert main(["train", "--epochs", "1", "--train-limit", "64", "--runs-dir", str(tmp_path)]) == 2
    assert f"disk full at {tmp_path}" in _one_error_line(capsys)


def test_an_unreadable_data_folder_or_runs_folder_is_one_error_line(tmp_path, monkeypatch, capsys):
    import lab.training.loop

    def unreadable(name, data_root=None):
        raise PermissionError(errno.EACCES, "Permission denied", "/srv/data/mnist")

    monkeypatch.setattr(lab.training.loop, "load_dataset", unreadable)
    assert main(["train", "--epochs", "1", "--runs-dir", str(tmp_path)]) == 2
    assert "no permission to use /srv/data/mnist" in _one_error_line(capsys)

    def unlistable(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(os, "scandir", unlistable)
    assert main(["list", "--runs-dir", str(tmp_path)]) == 2
    assert f"cannot list the runs folder: no permission to use {tmp_path}" in _one_error_line(capsys)


@pytest.mark.parametrize(
    ("code", "says"),
    [
        (errno.ENOSPC, "disk full at /x: free some space"),
        (errno.EROFS, "/x is on a read-only file system: choose a folder you can write to"),
        (errno.EACCES, "no permission to use /x: choose a folder you can read and write"),
        (errno.ENOTDIR, "/x is not a folder"),
        (errno.ENOENT, "/x does not exist"),
    ],
)
def test_os_errors_say_where_and_what_to_do(code, says):
    assert describe_os_error(OSError(code, os.strerror(code), "/x")).startswith(says)


def test_one_training_image_is_refused_with_the_bound(tmp_path, capsys):
    assert main(["train", "--train-limit", "1", "--runs-dir", str(tmp_path)]) == 2
    assert "train_limit: must be an integer from 0 to 1000000: 0 or at least 2, got 1" in _one_error_line(capsys)
    assert RunConfig(train_limit=2).validate() and RunConfig(train_limit=0).validate()


def test_two_training_images_train(tmp_path):
    record = train_run(RunConfig(epochs=1, train_limit=2, snapshot_points=10), RunStore(tmp_path))
    assert record.state == "finished", record.status
