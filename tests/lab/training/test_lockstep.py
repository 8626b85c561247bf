"""Lockstep training: a run's numbers never depend on the runs trained beside it. Runs trained step by step
together equal the same runs trained alone bit for bit, write the same files, and end alone when they
diverge, fail or are stopped."""

from __future__ import annotations

import json
import re

import pytest
import torch

from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.settings.experiment import make_experiment
from lab.training.loop import lockstep_groups, train_experiment, train_run
from tests.conftest import StopAfter, run_cli


def _weights(store: RunStore, record) -> dict[str, torch.Tensor]:
    return store.load_weights(record.run_id)


def _assert_identical(store_a: RunStore, a, store_b: RunStore, b) -> None:
    """Two runs equal bit for bit: weights, per-epoch metrics (but the clock), final accuracy, features."""
    wa, wb = _weights(store_a, a), _weights(store_b, b)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[name], wb[name]) for name in wa)
    timeless = lambda metrics: [
        {k: v for k, v in m.items() if k not in ("seconds", "images_per_second")} for m in metrics
    ]
    assert timeless(a.metrics) == timeless(b.metrics)
    assert a.status["test_acc"] == b.status["test_acc"]
    fa, fb = store_a.load_features(a.run_id), store_b.load_features(b.run_id)
    assert torch.equal(fa.test_features, fb.test_features)
    assert torch.equal(store_a.load_snapshots(a.run_id).features, store_b.load_snapshots(b.run_id).features)


@pytest.fixture(scope="module")
def three_ways(tmp_path_factory):
    """Three runs of different losses, seeds, learning rates and epochs, trained alone and in lockstep."""
    template = RunConfig(epochs=2, train_limit=320, experiment="lockstep")
    configs = make_experiment(template, ["softmax", "amc", "cosface"])
    configs = [configs[0], configs[1].replace(seed=1, lr=0.05), configs[2].replace(weight_decay=1e-3, epochs=3)]
    alone_store = RunStore(tmp_path_factory.mktemp("alone"))
    alone = [train_run(config, alone_store) for config in configs]
    store = RunStore(tmp_path_factory.mktemp("together"))
    together = train_experiment(configs, store)
    return configs, alone_store, alone, store, together


def test_runs_trained_together_equal_the_runs_trained_alone_bit_for_bit(three_ways):
    configs, alone_store, alone, store, together = three_ways
    assert [r.config for r in together] == configs
    assert [r.state for r in together] == ["finished"] * 3
    for a, b in zip(alone, together, strict=True):
        _assert_identical(alone_store, a, store, b)


def test_runs_trained_together_write_the_same_files(three_ways):
    _, _, alone, store, together = three_ways
    for a, b in zip(alone, together, strict=True):
        assert sorted(p.name for p in a.run_dir.iterdir()) == sorted(p.name for p in b.run_dir.iterdir())
    assert store.load_snapshots(together[2].run_id).epochs.tolist() == [0, 1, 2, 3]  # its own number of epochs


def test_training_time_counts_each_runs_own_steps(three_ways):
    """Each run's training time is the time of its own steps, not the group's wall clock: the three runs'
    times add up to less than the experiment took, and a run trained alone takes about as long."""
    _, _, alone, _, together = three_ways
    assert all(r.status["train_seconds"] > 0 for r in together)
    started = min(r.status["started"] for r in together)
    finished = max(r.status["finished"] for r in together)
    assert sum(r.status["train_seconds"] for r in together) < finished - started


def test_the_cli_gives_a_run_the_same_accuracy_alone_and_in_a_three_loss_experiment(tmp_path):
    """The filed case: lsoftmax seed 0 alone and beside softmax and AMC."""
    common = ["--dataset", "digits", "--seeds", "0", "--epochs", "2", "--train-limit", "400"]
    for name, losses in (("alone", "lsoftmax"), ("together", "softmax,lsoftmax,amc")):
        done = run_cli("train", *common, "--losses", losses, "--runs-dir", str(tmp_path / name), "--experiment", name)
        assert done.returncode == 0, done.stderr
    accuracies = {}
    for name in ("alone", "together"):
        for status in (tmp_path / name).glob("*/status.json"):
            config = json.loads((status.parent / "config.json").read_text())
            if config["loss"] == "lsoftmax":
                accuracies[name] = json.loads(status.read_text())["test_acc"]
    assert accuracies["alone"] == accuracies["together"]


def test_a_diverging_run_drops_out_and_the_others_train_on_unchanged(tmp_path):
    configs = make_experiment(RunConfig(epochs=2, train_limit=320, experiment="diverge"), ["softmax", "lmd", "amc"])
    configs[1] = configs[1].replace(lr=10.0)  # lmd at lr 10 diverges within two epochs on digits
    reports = []
    store = RunStore(tmp_path / "together")
    records = train_experiment(configs, store, on_progress=reports.append)
    assert [r.state for r in records] == ["finished", "diverged", "finished"]
    # the loss or the weights go first, as the arithmetic of this machine has it
    assert re.search(r"became (non-finite|inf|nan) in epoch", records[1].status["message"])
    assert "lower learning rate than 10" in records[1].status["message"]
    assert [p.status for p in reports if p.run_index == 1 and p.status] == ["diverged"]
    for index in (0, 2):
        alone_store = RunStore(tmp_path / f"alone{index}")
        _assert_identical(alone_store, train_run(configs[index], alone_store), store, records[index])


def test_a_failing_head_fails_its_run_only(tmp_path, monkeypatch):
    from losses.amc import AMCHead

    def broken(self, features, labels):
        raise RuntimeError("broken head")

    monkeypatch.setattr(AMCHead, "forward", broken)
    configs = make_experiment(RunConfig(epochs=1, train_limit=128, experiment="fail"), ["softmax", "amc"])
    first, second = train_experiment(configs, RunStore(tmp_path))
    assert first.state == "finished"
    assert second.state == "failed" and second.status["message"] == "RuntimeError: broken head"
    assert "broken head" in second.status["traceback"]


def test_stopping_ends_every_run_as_stopped_with_its_weights(tmp_path):
    stopper = StopAfter(7)
    store = RunStore(tmp_path)
    configs = make_experiment(RunConfig(epochs=3, experiment="stop"), ["softmax", "amc", "opl"])
    records = train_experiment(configs, store, on_progress=stopper, stop=stopper.event)
    assert [r.state for r in records] == ["stopped"] * 3
    assert all(store.load_weights(r.run_id) for r in records)


def test_every_run_reports_its_own_progress(tmp_path):
    reports = []
    configs = make_experiment(RunConfig(epochs=2, train_limit=256, experiment="progress"), ["softmax", "opl"])
    train_experiment(configs, RunStore(tmp_path), on_progress=reports.append)
    for index, config in enumerate(configs):
        mine = [p for p in reports if p.run_index == index]
        assert all(p.loss == config.loss and p.n_runs == 2 for p in mine)
        assert [p.metrics["epoch"] for p in mine if p.metrics] == [1, 2]
        assert mine[-1].status == "finished"
        assert [p.step for p in mine if p.epoch == 1 and p.metrics is None] == [1, 2, 3, 4]


def test_runs_group_by_dataset_and_device_only():
    base = RunConfig(experiment="groups")
    configs = [
        base,
        base.replace(loss="amc", lr=0.05, weight_decay=1e-3, seed=3),
        base.replace(dataset="fashion-mnist"),
        base.replace(model="lenetpp", epochs=3, optimizer="adam"),
        base.replace(dataset="fashion-mnist", loss="opl"),
    ]
    assert lockstep_groups(configs) == [[0, 1, 3], [2, 4]]
    assert lockstep_groups(configs, limit=2) == [[0, 1], [2, 4], [3]]
