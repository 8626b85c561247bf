"""Sweeps on a real Ray cluster (no mocks): a local cluster started by the tests, runs on digits.

The module's cluster is ``ray.init(num_cpus=2)`` in this process, shut down at the end; one test also
lets ``python -m lab train --backend ray`` start and shut down its own. Every test checks that no Ray
process it started outlives it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Mapping

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

ray = pytest.importorskip("ray")

from lab.runs.io import RunWriteError  # noqa: E402
from lab.runs.store import RunStore  # noqa: E402
from lab.runs.writer import RunWriter  # noqa: E402
from lab.settings.config import RunConfig  # noqa: E402
from lab.settings.experiment import make_experiment  # noqa: E402
from lab.training.backends import make_backend  # noqa: E402
from lab.training.backends.base import BackendError  # noqa: E402
from lab.training.backends.ray_cluster import RayBackend  # noqa: E402
from tests.conftest import ROOT, run_cli  # noqa: E402
from ui import form_widgets, session  # noqa: E402
from ui.run_on import RUN_ON  # noqa: E402

CREDENTIAL = "ray-test-credential-".ljust(43, "0")


def raylet_pids() -> set[int]:
    found = subprocess.run(["pgrep", "-f", "raylet/raylet"], capture_output=True, text=True).stdout.split()
    return {int(pid) for pid in found}


def train_digits_on_ray(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess:
    """``python -m lab train --backend ray`` for one epoch on digits, with ``args`` after that."""
    return run_cli("train", "--backend", "ray", "--dataset", "digits", "--epochs", "1", *args, env=env)


# The tests without the module's cluster come first: it lives from its first user to the end of the module.
def test_the_cli_starts_a_local_ray_for_the_sweep_and_shuts_it_down(tmp_path):
    before = raylet_pids()
    without_address = {key: value for key, value in os.environ.items() if key != "LOSSLENS_RAY_ADDRESS"}
    result = train_digits_on_ray("--losses", "softmax", "--runs-dir", str(tmp_path), env=without_address)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["status"] for line in result.stdout.splitlines()] == ["finished"]
    assert raylet_pids() <= before, "the local Ray it started is gone"


def test_an_unreachable_cluster_is_one_error_line_before_anything_starts(tmp_path):
    result = run_cli(
        "train", "--backend", "ray", "--ray-address", "127.0.0.1:9", "--runs-dir", str(tmp_path), timeout=120
    )
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Ray cluster at 127.0.0.1:9 is not reachable"), result.stderr
    assert not (tmp_path / "runs").exists() and not any(tmp_path.iterdir())


def test_ray_options_are_checked_before_anything_starts():
    with pytest.raises(BackendError, match="cpus per run: must be above 0"):
        make_backend("ray", cpus_per_run=0)
    with pytest.raises(BackendError, match="gpus per run: must be a number from 0 to 8"):
        make_backend("ray", gpus_per_run=-1)
    with pytest.raises(BackendError, match="write it as HOST:PORT"):
        make_backend("ray", "no-port-here").connect()


@pytest.fixture
def app_on(tmp_path, monkeypatch):
    """The app on a fresh runs folder with ``LOSSLENS_RAY_ADDRESS`` set to the address given: opens its
    Train page and returns the AppTest."""
    monkeypatch.setenv("LOSSLENS_RUNS_DIR", str(tmp_path / "app-runs"))
    st.cache_resource.clear()
    st.cache_data.clear()

    def open_train_page(address: str) -> AppTest:
        monkeypatch.setenv("LOSSLENS_RAY_ADDRESS", address)
        app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
        app.session_state[session.CREDENTIAL] = CREDENTIAL
        app.run()
        app.switch_page("pages/train.py").run()
        assert not app.exception, [e.value for e in app.exception]
        return app

    yield open_train_page
    st.cache_resource.clear()
    st.cache_data.clear()


def test_the_train_page_says_when_the_ray_cluster_cannot_be_reached(app_on):
    app = app_on("127.0.0.1:9")
    choice = app.radio(key=RUN_ON)
    assert choice.disabled and choice.options == ["this machine", "Ray cluster at 127.0.0.1:9"]
    assert any("is not reachable" in c.value and "Training runs on this machine" in c.value for c in app.caption)
    assert not ray.is_initialized()


def test_the_train_form_is_not_held_up_by_an_address_that_is_not_a_ray_cluster(app_on, silent_server):
    app = app_on(silent_server)  # fails after the AppTest's timeout if the page waits for Ray
    choice = app.radio(key=RUN_ON)
    assert choice.disabled and app.button(key="start"), "the form is drawn, training on this machine"
    said = " ".join(c.value for c in app.caption)
    assert "still asking the Ray cluster" in said or "is not a Ray cluster" in said, said
    assert not ray.is_initialized()


@pytest.fixture(scope="module")
def cluster():
    """A 2-CPU local Ray cluster for the module; its address, for drivers in other processes."""
    before = raylet_pids()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
    assert raylet_pids() <= before, "the test cluster's raylet outlived ray.shutdown()"


def digits_runs(variants, seeds=(0,), epochs=2, **settings) -> list[RunConfig]:
    return make_experiment(RunConfig(dataset="digits", epochs=epochs, **settings), variants, seeds=list(seeds))


def test_a_sweep_on_ray_writes_every_run_into_the_drivers_store(cluster, tmp_path):
    store = RunStore(tmp_path / "runs")
    configs = digits_runs(["softmax", "lsoftmax:margin=4"], epochs=2)
    progress = []
    backend = RayBackend(cluster)
    records = backend.run(configs, store, on_progress=progress.append)
    assert [(r.state, r.config.variant) for r in records] == [
        ("finished", "Softmax cross-entropy"),
        ("finished", "L-Softmax m=4"),
    ]
    for record in records:
        assert record.run_dir.parent == store.root and len(record.metrics) == 2
        assert record.test_acc > 0.3, "learned something in two epochs"  # chance is 0.1
        features = store.load_features(record.run_id)
        assert len(features.test_labels) == 360
        assert store.load_snapshots(record.run_id).last_epoch == 2
        assert len(store.load_weights(record.run_id)) > 0
    # progress carries the driver's run ids, every epoch, and each run's end after its files are in
    ids = {r.run_id for r in records}
    assert {p.run_id for p in progress} == ids
    ends = [p for p in progress if p.status is not None]
    assert sorted(p.run_id for p in ends) == sorted(ids) and all(p.status == "finished" for p in ends)
    assert sum(p.metrics is not None for p in progress) == 4
    assert ray.is_initialized(), "a connection it did not open stays open"


class FillingStore(RunStore):
    """A runs folder whose disk is full from its second run folder on."""

    def create(self, config: RunConfig, owner: str = "") -> RunWriter:
        if self.run_ids():
            raise RunWriteError(f"cannot create a run: disk full at {self.root}: free some space")
        return super().create(config, owner)


def test_a_disk_that_fills_while_a_sweep_creates_run_folders_leaves_no_run_running(cluster, tmp_path):
    store = FillingStore(tmp_path / "runs")
    with pytest.raises(RunWriteError, match="disk full"):
        RayBackend(cluster).run(digits_runs(["softmax", "amc", "opl"], epochs=3), store)
    (record,) = store.list()
    assert record.state == "failed" and record.message.startswith("the sweep ended before this run did")


def test_a_worker_killed_mid_run_is_retried_once_and_a_second_death_fails_only_that_run(cluster, tmp_path):
    store = RunStore(tmp_path / "runs")
    # long enough that a run is still training when the driver, slowed by a busy machine, acts on its report
    configs = digits_runs(["softmax", "lsoftmax:margin=2", "lsoftmax:margin=4"], epochs=6)
    backend = RayBackend(cluster)
    deaths = {1: 1, 2: 2}  # run index -> how many of its workers to kill
    killed: dict[int, list[int]] = {index: [] for index in deaths}

    def kill_workers(progress):
        index = progress.run_index
        if index in deaths and progress.status is None and len(killed[index]) < deaths[index]:
            pid = backend.workers[index][1]
            if pid not in killed[index]:
                killed[index].append(pid)
                os.kill(pid, signal.SIGKILL)

    records = backend.run(configs, store, on_progress=kill_workers)
    states = [(r.state, r.message) for r in records]
    assert all(len(pids) == deaths[index] for index, pids in killed.items()), (killed, states)
    by_variant = {r.config.variant: r for r in records}
    untouched, retried, failed = (by_variant[c.variant] for c in configs)
    assert untouched.state == "finished" and "attempts" not in untouched.status
    assert retried.state == "finished" and retried.status["attempts"] == 2
    assert "retried: the Ray worker that first trained it died" in retried.message
    assert store.load_features(retried.run_id).test_features.shape == (360, 2)
    assert failed.state == "failed"
    assert "the Ray worker training it died" in failed.message and "so did its retry" in failed.message
    assert len(store.list()) == 3, "each run has one folder, retried or not"


def test_stop_cancels_the_runs_not_started_and_stops_the_running_ones(cluster, tmp_path):
    store = RunStore(tmp_path / "runs")
    # long enough that no run finishes before the stop reaches it (a run reads the stop one report late)
    configs = digits_runs(["softmax", "lsoftmax:margin=2", "lsoftmax:margin=4", "center"], epochs=60)
    stop = threading.Event()

    def stop_after_first_epoch(progress):
        if progress.metrics is not None:
            stop.set()

    records = RayBackend(cluster).run(configs, store, on_progress=stop_after_first_epoch, stop=stop)
    assert 1 <= len(records) <= 2, "at most the two runs that had a CPU started"
    assert all(r.state == "stopped" for r in records), [(r.state, r.message) for r in records]
    assert all(len(store.load_weights(r.run_id)) > 0 for r in records), "a stopped run keeps what it learned"
    assert len(store.list()) == len(records), "no folder for a run that never started"


def test_a_worker_without_the_dataset_fails_that_run_with_the_usual_message(cluster, tmp_path):
    empty = tmp_path / "no-mnist-here"
    empty.mkdir()
    store = RunStore(tmp_path / "runs")
    configs = [*digits_runs(["softmax"], epochs=1), RunConfig(dataset="mnist", data_root=str(empty), epochs=1)]
    records = RayBackend(cluster).run(configs, store)
    assert [r.state for r in records] == ["finished", "failed"]
    assert "mnist: the four IDX files" in records[1].message and str(empty) in records[1].message


def test_the_cli_runs_on_a_cluster_named_by_the_environment_and_prints_variants_and_seeds(cluster, tmp_path):
    with_address = {**os.environ, "LOSSLENS_RAY_ADDRESS": cluster}
    result = train_digits_on_ray(
        "--losses", "softmax,lsoftmax:margin=4", "--seeds", "0,1", "--runs-dir", str(tmp_path), env=with_address
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted((line["variant"], line["seed"]) for line in lines) == [
        ("L-Softmax m=4", 0),
        ("L-Softmax m=4", 1),
        ("Softmax cross-entropy", 0),
        ("Softmax cross-entropy", 1),
    ]
    assert all(line["status"] == "finished" for line in lines)


def test_the_train_page_trains_on_the_ray_cluster_and_shows_every_run(cluster, app_on):
    app = app_on(cluster)
    choice = app.radio(key=RUN_ON)
    assert not choice.disabled and choice.options[1] == f"Ray cluster at {cluster}"
    assert any("The Ray cluster has 2 CPUs and 0 GPUs." in c.value for c in app.caption)
    choice.set_value("ray")
    app.button_group(key="losses").set_value(["softmax", "lsoftmax"])
    app.text_input(key=form_widgets.SEEDS).set_value("2")
    app.text_input(key="epochs").set_value("1")
    app.text_input(key="train_limit").set_value("300").run()
    app.button(key="start").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    owner = session.owner_of(CREDENTIAL)
    manager = session.job_manager()
    job = manager.get(manager.current_job(owner), owner)
    assert job.backend is not None, "the job trains through the Ray backend"
    job.join(timeout=600)
    assert job.error is None and [r.state for r in job.records] == ["finished"] * 4
    assert {r.run_dir.parent for r in job.records} == {session.run_store().root}
    assert sorted((r.config.variant, r.config.seed) for r in job.records) == [
        ("L-Softmax", 0),
        ("L-Softmax", 1),
        ("Softmax cross-entropy", 0),
        ("Softmax cross-entropy", 1),
    ]
    app.run()
    assert len(app.get("progress")) == 4 and any("Done: 4 of 4 runs finished" in s.value for s in app.success)
    assert ray.is_initialized(), "the app's sweep leaves the cluster it connected to running"
