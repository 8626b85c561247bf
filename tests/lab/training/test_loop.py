"""The trainer on real digits: it learns, is reproducible, reloads, stops (in epoch 1 with its snapshot file),
reports progress, trains on as few as two images, and trains the same model in either memory layout."""

from __future__ import annotations

import logging
import threading

import pytest
import torch

from lab.datasets import load_dataset
from lab.runs.restore import load_trained
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.training.loop import train_experiment, train_run
from tests.conftest import StopAfter
from tests.lab.runs.planting import TINY

QUICK = RunConfig(epochs=6, batch_size=64)


@pytest.fixture
def trainer_log(caplog):
    """The trainer's log records, also when a program has set its loggers not to propagate."""
    logger = logging.getLogger("lab.training.loop")
    level, propagate = logger.level, logger.propagate
    logger.addHandler(caplog.handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # each record once, through caplog's handler
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(level)
    logger.propagate = propagate


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("runs"))
    return store, train_run(QUICK, store)


def test_softmax_on_digits_learns_far_above_chance(trained):
    _, record = trained
    assert record.state == "finished", record.status
    assert record.status["test_acc"] > 0.85
    assert len(record.metrics) == QUICK.epochs
    assert record.metrics[-1]["train_loss"] < record.metrics[0]["train_loss"]
    assert set(record.metrics[0]) >= {"epoch", "train_loss", "terms", "train_acc", "test_acc", "seconds"}
    assert record.metrics[0]["terms"].keys() == {"ce"}


def test_reloaded_weights_give_the_same_test_accuracy(trained):
    store, record = trained
    digits = load_dataset("digits")
    model, head = load_trained(store, record)
    with torch.inference_mode():
        accuracy = float((head.logits(model(digits.test.normalized)).argmax(1) == digits.test.labels).float().mean())
    assert accuracy == pytest.approx(record.status["test_acc"], abs=1e-6)


def test_run_directory_holds_features_snapshots_and_penultimate(trained):
    store, record = trained
    features = store.load_features(record.run_id)
    digits = load_dataset("digits")
    n_test = len(digits.test)
    assert features.test_features.shape == (n_test, 2)
    assert features.test_logits.shape == (n_test, 10)
    assert features.class_directions.shape == (10, 2)
    subset = features.snapshot_indices
    assert features.penultimate.shape == (len(subset), 128)
    assert torch.equal(features.snapshot_images, digits.test.images[subset])  # the run needs no dataset to show them
    snapshots = store.load_snapshots(record.run_id)
    snapshots.check_subset(features, record.run_id)
    assert snapshots.features.shape == (QUICK.epochs + 1, len(subset), 2)
    assert torch.allclose(snapshots.features[-1], features.test_features[subset], atol=1e-5)


def test_snapshots_start_before_training_with_each_epochs_directions_and_accuracy(trained):
    store, record = trained
    snapshots = store.load_snapshots(record.run_id)
    assert snapshots.epochs.tolist() == list(range(QUICK.epochs + 1))
    assert snapshots.class_directions.shape == (QUICK.epochs + 1, 10, 2)
    assert torch.equal(snapshots.class_directions[-1], store.load_features(record.run_id).class_directions)
    assert not torch.allclose(snapshots.class_directions[0], snapshots.class_directions[-1])  # they moved
    assert not torch.allclose(snapshots.features[0], snapshots.features[1])
    accuracy = snapshots.test_acc.tolist()
    assert accuracy[1:] == pytest.approx([m["test_acc"] for m in record.metrics])
    assert accuracy[0] < 0.5 < accuracy[-1]  # untrained: about chance


def test_same_config_gives_the_same_metrics(tmp_path):
    config = RunConfig(epochs=2)
    first = train_run(config, RunStore(tmp_path / "a"))
    second = train_run(config, RunStore(tmp_path / "b"))
    strip = lambda metrics: [{k: v for k, v in m.items() if k not in ("seconds", "images_per_second")} for m in metrics]
    assert strip(first.metrics) == strip(second.metrics)


def test_stop_event_ends_the_run_as_stopped_and_keeps_its_weights(tmp_path):
    stopper = StopAfter(5)  # a few steps in
    store = RunStore(tmp_path)
    record = train_run(RunConfig(epochs=3), store, on_progress=stopper, stop=stopper.event)
    assert record.state == "stopped" and "stopped by the user" in record.status["message"]
    assert store.load_weights(record.run_id)
    assert stopper.reports[-1].status == "stopped"


def test_a_failing_run_does_not_stop_the_next_one(tmp_path, monkeypatch, trainer_log):
    from losses.softmax import SoftmaxHead

    original = SoftmaxHead.forward
    calls = {"n": 0}

    def nan_in_first_run(self, features, labels):
        total, terms = original(self, features, labels)
        calls["n"] += 1
        return (total * float("nan"), terms) if calls["n"] == 3 else (total, terms)

    monkeypatch.setattr(SoftmaxHead, "forward", nan_in_first_run)
    configs = [RunConfig(epochs=1, lr=0.1), RunConfig(epochs=1, lr=0.1, seed=1)]
    # one after another, so the third call of the head is the first run's
    first, second = train_experiment(configs, RunStore(tmp_path), lockstep=False)
    assert first.state == "diverged" and "epoch 1, step 3" in first.status["message"]
    assert "lower learning rate" in first.status["message"]
    assert second.state == "finished"
    logged = [(r.levelname, r.getMessage()) for r in trainer_log.records]
    assert ("WARNING", f"run {first.run_id} diverged: {first.status['message']}") in logged
    assert any(
        level == "INFO" and text.startswith(f"run {second.run_id} started: softmax on digits") for level, text in logged
    )
    assert any(
        level == "INFO" and text.startswith(f"run {second.run_id} finished after 1 epochs") for level, text in logged
    )


def test_a_failed_run_is_logged_with_its_traceback(tmp_path, monkeypatch, trainer_log):
    from losses.softmax import SoftmaxHead

    def broken(self, features, labels):
        raise RuntimeError("broken head")

    monkeypatch.setattr(SoftmaxHead, "forward", broken)
    record = train_run(RunConfig(epochs=1), RunStore(tmp_path))
    assert record.state == "failed" and record.status["message"] == "RuntimeError: broken head"
    (failure,) = [r for r in trainer_log.records if r.levelname == "ERROR"]
    assert failure.getMessage() == f"run {record.run_id} failed: RuntimeError: broken head"
    assert failure.exc_info and "broken head" in str(failure.exc_info[1])


def test_the_trainer_clips_gradients_to_the_norm_the_loss_asks_for(tmp_path, monkeypatch):
    clipped_to = []
    clip = torch.nn.utils.clip_grad_norm_

    def recording_clip(parameters, max_norm, *args, **kwargs):
        clipped_to.append(max_norm)
        return clip(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording_clip)
    store = RunStore(tmp_path)
    small = {"epochs": 1, "train_limit": 128, "experiment": "clip"}
    train_run(RunConfig(loss="cosface", loss_params={"grad_clip": 0.5}, **small), store)
    assert clipped_to and set(clipped_to) == {0.5}, "one clip per step, to the loss's grad_clip"
    clipped_to.clear()
    train_run(RunConfig(loss="cosface", loss_params={"grad_clip": 0.0}, **small), store)
    train_run(RunConfig(loss="softmax", **small), store)
    assert clipped_to == [], "grad_clip 0 and losses without it train unclipped"


def test_both_memory_layouts_train_the_same_model_to_the_same_accuracy(tmp_path):
    store = RunStore(tmp_path)
    fast = train_run(RunConfig(epochs=3), store)
    plain = train_run(RunConfig(epochs=3, channels_last=False), store)
    assert fast.config.channels_last and not plain.config.channels_last
    assert fast.state == plain.state == "finished"
    assert fast.status["test_acc"] == pytest.approx(plain.status["test_acc"], abs=0.03)
    assert fast.metrics[0]["train_loss"] == pytest.approx(plain.metrics[0]["train_loss"], rel=1e-3)
    weights = store.load_weights(fast.run_id)
    assert all(t.is_contiguous() for t in weights.values())  # saved in the ordinary layout


def test_a_run_stopped_in_epoch_one_has_its_snapshot_file(tmp_path):
    stop = threading.Event()
    stop.set()
    record = train_run(RunConfig(**TINY), RunStore(tmp_path), stop=stop)
    assert record.state == "stopped" and record.message == "stopped by the user in epoch 1"
    store = RunStore(tmp_path)
    snapshots = store.load_snapshots(record.run_id)
    assert snapshots.epochs.tolist() == [0]
    snapshots.check_subset(store.load_features(record.run_id), record.run_id)


def test_two_training_images_train(tmp_path):
    record = train_run(RunConfig(epochs=1, train_limit=2, snapshot_points=10), RunStore(tmp_path))
    assert record.state == "finished", record.status
