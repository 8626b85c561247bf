"""Training jobs: one trains in the background and reports its progress, a bad dataset is its error, the first
job's imports are warmed up; each job's size and each owner's share are bounded, and the queue is fair."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.settings.experiment import make_experiment
from lab.training import jobs
from lab.training.jobs import TrainingJob
from tests.conftest import ROOT
from tests.lab.runs.planting import OWNER


def test_training_job_runs_in_the_background_and_reports_progress(tmp_path):
    configs = [RunConfig(epochs=2, experiment="bg"), RunConfig(epochs=2, experiment="bg", seed=1)]
    job = TrainingJob(configs, RunStore(tmp_path))
    assert job.start() is job
    job.join(timeout=120)
    assert not job.running and job.error is None
    snapshot = job.snapshot()
    assert [r.state for r in job.records] == ["finished", "finished"]
    assert sorted(snapshot.latest) == [0, 1] and all(p.status == "finished" for p in snapshot.latest.values())
    assert [len(h) for h in snapshot.history.values()] == [2, 2]
    preview = snapshot.previews[1]
    assert preview.epoch == 2 and preview.snapshot.shape == (len(preview.snapshot_labels), 2)


def test_training_job_reports_a_bad_dataset_instead_of_crashing(tmp_path):
    job = TrainingJob([RunConfig(dataset="mnist", data_root=str(tmp_path))], RunStore(tmp_path / "runs"))
    job.start().join(timeout=30)
    assert job.error and "mnist" in job.error and "were not found" in job.error


def test_a_new_job_manager_warms_up_the_imports_of_the_first_training(tmp_path):
    """In a fresh process (this one has imported everything already): torch._dynamo, which the first
    optimizer would import mid-Start, is absent before and present once the manager has warmed up."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from lab.training.jobs import JobManager\n"
        "from lab.runs.store import RunStore\n"
        "before = 'torch._dynamo' in sys.modules\n"
        f"manager = JobManager(RunStore({str(tmp_path)!r}), max_running=1)\n"
        "assert manager.warmed.wait(timeout=120)\n"
        "print(before, 'torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]


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


def test_a_job_of_300_variants_by_10_seeds_is_refused_before_anything_starts(tmp_path, fake_training):
    variants = [f"center:weight={(i + 1) / 1000:g}" for i in range(300)]
    configs = make_experiment(RunConfig(experiment="huge"), variants, seeds=list(range(10)))
    manager = jobs.JobManager(RunStore(tmp_path), max_running=1)
    with pytest.raises(jobs.JobLimitError, match=r"3,000 runs \(300 variants x 10 seeds\); .* at most 100"):
        manager.submit(configs, OWNER)
    long_runs = make_experiment(RunConfig(epochs=200), ["softmax", "amc"], seeds=list(range(4)))
    with pytest.raises(jobs.JobLimitError, match="1,600 run-epochs .* at most 1,200"):
        manager.submit(long_runs, OWNER)
    assert manager.queue_length() == 0 and manager.jobs_of(OWNER) == [] and list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="3,000 runs; at most 100 may train together"):
        make_experiment(RunConfig(), variants, seeds=list(range(10)), max_runs=jobs.MAX_RUNS_PER_JOB)


def test_one_owner_holds_at_most_so_many_run_epochs(tmp_path, fake_training):
    manager = jobs.JobManager(RunStore(tmp_path), max_running=1)
    half = make_experiment(RunConfig(epochs=100), ["softmax"], seeds=list(range(10)))  # 1,000 run-epochs
    first = manager.submit(half, OWNER)
    manager.submit(half, OWNER)
    manager.stop(first, OWNER)
    deadline = time.monotonic() + 10
    while manager.state(first) != "done":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with pytest.raises(jobs.JobLimitError, match="come to 1,000 run-epochs and this one adds 1,200; .* 2,000"):
        manager.submit(make_experiment(RunConfig(epochs=120), ["softmax"], seeds=list(range(10))), OWNER)


def test_owners_without_a_finished_run_share_part_of_the_queue(tmp_path, fake_training):
    store = RunStore(tmp_path)
    veteran = "daveveteran0004"
    writer = store.create(RunConfig(), owner=veteran)
    writer.set_status("finished", message="done")
    manager = jobs.JobManager(store, max_running=1)
    for n in range(jobs.MAX_NEWCOMER_JOBS):
        manager.submit([RunConfig()], f"fresh{n:010d}")
    with pytest.raises(jobs.JobLimitError, match="from browsers that have not finished one here yet"):
        manager.submit([RunConfig()], "fresh-one-more")
    assert manager.submit([RunConfig()], veteran), "an owner who has trained here still gets a place"


def test_an_owners_second_job_waits_behind_everyone_elses_first(tmp_path, fake_training):
    manager = jobs.JobManager(RunStore(tmp_path), max_running=1)
    first = manager.submit([RunConfig()], "aliceowner0001")
    second = manager.submit([RunConfig()], "aliceowner0001")
    other = manager.submit([RunConfig()], "bobowner00002")
    manager.stop(first, "aliceowner0001")
    deadline = time.monotonic() + 10
    while manager.state(first) != "done" or manager.state(other) == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert manager.state(other) == "running" and manager.state(second) == "queued"
