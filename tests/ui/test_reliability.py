"""Bad input, failures, restarts, several users and untrusted files: LossLens keeps working, says
what went wrong and what to do, and loses no finished work."""

from __future__ import annotations

import functools
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time

import pytest
import streamlit as st
import torch
import torchvision

from lab.runs.contents import RunStoreError
from lab.runs.restore import load_trained
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.settings.errors import ConfigError
from lab.settings.experiment import loss_title
from lab.training.jobs import JobManager
from lab.training.loop import train_experiment
from tests import apptest
from tests.apptest import app_reads, figures, shown
from tests.conftest import ROOT
from ui import session
from ui.text import plain

OLD_RUNS = ROOT / "tests" / "fixtures" / "runs"  # written by LossLens before epoch 0 and images
CREDENTIAL = "reliability-browser".ljust(43, "0")  # what the browser's cookie would hold
OWNER = session.owner_of(CREDENTIAL)
EXPERIMENT = "reliability-exp"
open_page = functools.partial(apptest.open_page, experiment=EXPERIMENT, credential=CREDENTIAL)


# ---------------------------------------------------------------- bad settings


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "0"], "epochs: must be an integer from 1 to 200"),
        (["--epochs", "-5"], "epochs: must be an integer from 1 to 200"),
        (["--batch-size", "1000000000"], "batch_size: must be an integer from 2 to 4096"),
        (["--feat-dim", "-3"], "feat_dim: must be an integer from 2 to 512"),
        (["--lr", "1e9"], "lr: must be a number above 0 to 10"),
        (["--lr", "inf"], "lr: 'inf' is not a number"),
        (["--weight-decay", "nan"], "weight_decay: 'nan' is not a number"),
        (["--seed", "-1"], "seed: must be an integer from 0"),
        (["--losses", "amc", "--hparam", "amc.margin=nan"], "amc.margin: 'nan' is not a number"),
        (["--losses", "amc", "--hparam", "amc.margin=inf"], "amc.margin: 'inf' is not a number"),
        (["--losses", "amc", "--hparam", "amc.margin=-1"], "amc.margin: must be"),
        (["--losses", "amc", "--hparam", "amc.margin=wide"], "amc.margin: 'wide' is not a number"),
        (["--losses", "amc", "--hparam", "amc.pairing=diagonal"], "amc.pairing: must be one of"),
        (["--losses", "amc", "--hparam", "amc.colour=red"], "amc: unknown hyperparameter colour"),
        (["--dataset", "imagenet"], "dataset: must be one of digits"),
        (["--model", "vgg16"], "model: must be one of small"),
        (["--train-limit", "-1"], "train_limit: must be an integer from 0"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_cli_bad_setting_names_the_field_and_range_and_starts_nothing(tmp_path, args, message):
    result = subprocess.run(
        [sys.executable, "-m", "lab", "train", "--runs-dir", str(tmp_path), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not any(tmp_path.iterdir())  # nothing started


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"feat_dim": "2"}, "feat_dim: must be an integer"),
        ({"epochs": None}, "epochs: must be an integer"),
        ({"loss_params": {"margin": 1}}, "softmax: unknown hyperparameter margin"),
        ({"shape": "circle"}, "unknown field shape"),
    ],
    ids=["feat_dim as text", "epochs null", "unknown loss hyperparameter", "extra field"],
)
def test_hand_edited_run_config_is_a_per_run_error(tmp_path, change, message):
    store = RunStore(tmp_path)
    writer = store.create(RunConfig(experiment="x"))
    writer.set_status("finished")
    path = writer.run_dir / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    record = store.load(writer.run_id)
    assert record.config is None and message in record.error


def test_run_config_missing_a_required_field_is_an_error(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create(RunConfig())
    config = json.loads((writer.run_dir / "config.json").read_text())
    del config["loss"]
    (writer.run_dir / "config.json").write_text(json.dumps(config))
    assert "missing field loss" in store.load(writer.run_id).error
    with pytest.raises(ConfigError, match="missing field loss"):
        RunConfig.from_dict(config, ("loss",))


# ---------------------------------------------------------------- diverging and interrupted training


def test_a_diverging_run_is_marked_with_epoch_and_hint_and_the_next_run_goes_on(tmp_path):
    store = RunStore(tmp_path)
    diverging, healthy = train_experiment([RunConfig(lr=10.0, epochs=2), RunConfig(epochs=2, seed=1)], store)
    assert diverging.state == "diverged"
    assert (
        "epoch 1" in diverging.status["message"] and "try a lower learning rate than 10" in diverging.status["message"]
    )
    assert healthy.state == "finished" and healthy.status["test_acc"] > 0.3


def test_training_killed_hard_leaves_finished_runs_intact_and_marks_the_other_interrupted(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lab",
            "train",
            "--losses",
            "softmax,amc",
            "--runs-dir",
            str(tmp_path),
            "--epochs",
            "30",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    first = json.loads(process.stdout.readline())  # the first run's JSON line: it has finished
    assert first["status"] == "finished"
    store = RunStore(tmp_path)

    def second_run_has_an_epoch() -> bool:
        second = [tmp_path / run_id / "metrics.jsonl" for run_id in store.run_ids() if run_id != first["run_id"]]
        return bool(second) and second[0].exists() and bool(second[0].read_text().strip())

    deadline = time.time() + 120
    while not second_run_has_an_epoch() and time.time() < deadline:  # then it is 1 epoch into 30
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    records = {record.run_id: record for record in store.list()}
    finished = records.pop(first["run_id"])
    (interrupted,) = records.values()
    assert finished.state == "finished" and interrupted.state == "interrupted"
    assert finished.error is None and interrupted.error is None
    model, head = load_trained(store, finished)
    assert store.load_features(finished.run_id).test_features.shape[1] == 2
    assert "ended before it finished" in interrupted.status["message"]
    for path in tmp_path.rglob("*"):  # nothing half-written is left behind
        assert not path.name.endswith(".tmp"), path
        if path.suffix == ".json":
            json.loads(path.read_text())


# ---------------------------------------------------------------- corrupt and hostile files


def test_weights_that_are_a_pickle_with_a_payload_are_refused_without_running_it(tmp_path):
    store = RunStore(tmp_path)
    record = train_experiment([RunConfig(epochs=1)], store)[0]
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (record.run_dir / "weights.safetensors").write_bytes(pickle.dumps({"model.x": Payload()}))
    with pytest.raises(RunStoreError, match="not a valid safetensors file"):
        load_trained(store, store.load(record.run_id))
    torch_file = record.run_dir / "weights.pt"  # even torch.load is only used with weights_only, never here
    torch_file.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(pickle.UnpicklingError):
        torch.load(torch_file, weights_only=True)
    assert not marker.exists()


# ---------------------------------------------------------------- several users


def test_jobs_are_queued_beyond_the_limit_and_owners_cannot_touch_each_others(tmp_path):
    manager = JobManager(RunStore(tmp_path), max_running=1)
    first = manager.submit([RunConfig(epochs=1, experiment="a")], owner="alice")
    second = manager.submit([RunConfig(epochs=1, experiment="b")], owner="bobby")
    assert manager.state(first) == "running" and manager.state(second) == "queued"
    assert manager.queue_position(second) == 1
    assert manager.get(first, "bobby") is None and not manager.stop(first, "bobby")
    assert manager.jobs_of("bobby") == [second]
    deadline = time.time() + 240
    while manager.state(second) != "done" and time.time() < deadline:
        time.sleep(0.2)
    jobs = [manager.get(first, "alice"), manager.get(second, "bobby")]
    assert [[r.state for r in job.records] for job in jobs] == [["finished"], ["finished"]]
    store = RunStore(tmp_path)
    assert list(store.experiments(owner="alice")) == ["a"] and list(store.experiments(owner="bobby")) == ["b"]


def test_stopping_a_queued_job_removes_it_from_the_queue(tmp_path):
    manager = JobManager(RunStore(tmp_path), max_running=1)
    running = manager.submit([RunConfig(epochs=30)], owner="alice")  # long enough to be stopped mid-run
    queued = manager.submit([RunConfig(epochs=30)], owner="alice")
    assert manager.stop(queued, "alice") and manager.queue_length() == 0
    manager.stop(running, "alice")
    manager.get(running, "alice").join(60)
    assert manager.get(running, "alice").records[0].state == "stopped"


# ---------------------------------------------------------------- the app under bad input


@pytest.fixture(scope="module")
def app_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("reliability-runs")
    store = RunStore(root)
    configs = [
        RunConfig(loss="softmax", epochs=2, experiment=EXPERIMENT),
        RunConfig(loss="opl", epochs=2, experiment=EXPERIMENT),
        RunConfig(loss="amc", epochs=2, experiment=EXPERIMENT),
        RunConfig(loss="softmax", lr=10.0, epochs=2, experiment=EXPERIMENT, seed=3),
    ]
    train_experiment(configs, store, owner=OWNER)
    with app_reads(root):
        yield root


def test_app_shows_a_diverged_run_and_the_others(app_runs):
    app = open_page("pages/features.py")
    sidebar = " ".join(m.value for m in app.sidebar.markdown)
    assert f"**{plain(loss_title('softmax'))}** · seed 3 :red[diverged]" in sidebar, "named by its seed"
    assert any("try a lower learning rate" in c.value for c in app.sidebar.caption)
    assert len([c for c in app.get("plotly_chart") if "test accuracy" in c.proto.spec]) == 3


def test_corrupt_files_give_a_per_run_error_and_the_other_runs_still_show(app_runs):
    store = RunStore(app_runs)
    runs = [r for r in store.list() if r.experiment == EXPERIMENT and r.state == "finished"]
    opl, amc = (next(r for r in runs if r.config.loss == name) for name in ("opl", "amc"))
    weights = opl.run_dir / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])  # truncated weights
    features = amc.run_dir / "features.safetensors"
    features.write_bytes(b"\x00" * 64)  # garbage features
    st.cache_data.clear()
    st.cache_resource.clear()
    for page in ("pages/features.py", "pages/angles.py", "pages/gradcam.py", "pages/compare.py"):
        app = open_page(page)
        errors = shown(" ".join(e.value for e in app.error))
        for loss in ("opl", "amc"):
            assert f"**{loss_title(loss)}** cannot be shown" in errors, page
        assert app.get("plotly_chart") or app.get("image"), page  # softmax still shows


def test_unknown_experiment_job_and_owner_in_the_url_are_ignored(app_runs):
    app = apptest.open_page("pages/train.py", experiment="../../etc/passwd", job="no-such-job", u="<script>")
    assert "u" not in app.query_params and "job" not in app.query_params
    assert app.get("progress") == []  # no job attached


def test_bad_settings_in_the_train_form_name_the_field_and_start_nothing(app_runs):
    app = open_page("pages/train.py")
    app.button_group(key="losses").set_value(["amc"])
    app.text_input(key="hparam.amc.margin").set_value("-1.0")
    app.button(key="start").click().run()
    assert any("amc.margin: must be" in shown(e.value) for e in app.error)
    app.text_input(key="hparam.amc.margin").set_value("0.5")
    app.text_input(key="lr").set_value("0.0")
    app.button(key="start").click().run()
    assert any("lr: must be a number above 0" in shown(e.value) for e in app.error)
    assert not session.job_manager().jobs_of(OWNER)


def test_missing_dataset_offline_says_what_to_download_and_the_app_goes_on(app_runs, tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLENS_DATA_DIR", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    app = open_page("pages/train.py")
    app.selectbox(key="dataset").set_value("mnist").run()
    app.button(key="start").click().run()
    message = shown(" ".join(e.value for e in app.error))
    assert "mnist: the four IDX files" in message and "could not be downloaded" in message
    assert str(tmp_path / "MNIST" / "raw") in message
    assert not session.job_manager().jobs_of(OWNER)
    app.switch_page("pages/compare.py")
    app.run()
    assert not app.exception and app.dataframe  # the app goes on


def test_limits_and_runs_folder_size_are_shown_and_an_experiment_can_be_deleted(app_runs):
    app = open_page("pages/train.py")
    limits = " ".join(m.value for m in app.expander[-1].markdown)
    assert "epochs: 1 to 200" in limits and "batch size: 2 to 4096" in limits and "5.0 MB" in limits
    assert any("Runs folder" in c.value and "MB" in c.value for c in app.sidebar.caption)
    app.button(key="confirm_delete").click().run()
    assert not app.exception
    assert EXPERIMENT not in RunStore(app_runs).experiments()


def test_a_run_folder_written_by_an_earlier_version_shows_in_the_app(tmp_path):
    """A user's own run from an older release (this one was the digits example of its day: as an example it
    would be replaced by today's, so here it is a run of the user's own experiment)."""
    old = tmp_path / "old-digits-softmax"
    shutil.copytree(OLD_RUNS / "example-digits-2d-softmax", old)
    config = json.loads((old / "config.json").read_text())
    (old / "config.json").write_text(json.dumps({**config, "experiment": "old-digits"}))
    with app_reads(tmp_path):
        app = apptest.open_page("pages/features.py", experiment="old-digits")
        assert not app.error, [e.value for e in app.error]
        titles = [fig["layout"]["title"]["text"] for fig in figures(app)]
        assert any("Softmax cross-entropy" in title and "test accuracy 95.8%" in title for title in titles)
        app.slider(key="feature_epoch").set_value(1).run()  # its snapshots start at epoch 1
        assert not app.exception
        assert app.slider(key="feature_epoch").value == 1
