"""Fused training: runs trained together match the same runs trained one by one, write the same files, and
drop out alone when they diverge, fail or are stopped."""

from __future__ import annotations

import pytest
import torch

import lab.fused as fused
from lab.config import RunConfig
from lab.experiment import make_experiment
from lab.runstore import RunStore
from lab.trainer import train_experiment, train_run
from tests.conftest import StopAfter


def _close(alone: list[dict], together: list[dict], accuracy: float = 0.02) -> None:
    """Per-epoch metrics equal up to float rounding (the stacked convolutions add up in another order),
    accuracies within ``accuracy``: a 2-D model early in training moves many images across a class boundary
    for a small change of its weights."""
    assert len(alone) == len(together)
    for a, b in zip(alone, together, strict=True):
        assert a.keys() == b.keys()
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-3)
        # AMC's pair term is a hinge: a pair crossing its margin moves the term more than rounding moves the rest
        assert b["terms"] == pytest.approx(a["terms"], rel=1e-3, abs=5e-3)
        assert b["train_acc"] == pytest.approx(a["train_acc"], abs=accuracy)
        assert b["test_acc"] == pytest.approx(a["test_acc"], abs=accuracy)
        assert b["lr"] == pytest.approx(a["lr"], rel=1e-9)


def _files(record) -> list[str]:
    return sorted(path.name for path in record.run_dir.iterdir())


@pytest.fixture(scope="module")
def three_ways(tmp_path_factory):
    """Three runs of different losses, seeds and learning rates, trained one by one and together."""
    template = RunConfig(epochs=2, train_limit=320, experiment="fused")
    configs = make_experiment(template, ["softmax", "amc", "cosface"])
    configs = [configs[0], configs[1].replace(seed=1, lr=0.05), configs[2].replace(weight_decay=1e-3)]
    alone = train_experiment(configs, RunStore(tmp_path_factory.mktemp("alone")), fused=False)
    store = RunStore(tmp_path_factory.mktemp("together"))
    together = train_experiment(configs, store, fused=True)
    return configs, alone, together, store


def test_runs_trained_together_match_the_runs_trained_one_by_one(three_ways):
    configs, alone, together, _ = three_ways
    assert [r.config for r in together] == configs
    assert [r.state for r in together] == ["finished"] * 3
    for a, b in zip(alone, together, strict=True):
        _close(a.metrics, b.metrics)
        assert b.status["test_acc"] == pytest.approx(a.status["test_acc"], abs=0.02)


def test_runs_trained_together_write_the_same_files(three_ways):
    _, alone, together, store = three_ways
    for a, b in zip(alone, together, strict=True):
        assert _files(a) == _files(b)
    snapshots = store.load_snapshots(together[0].run_id)
    assert snapshots.epochs.tolist() == [0, 1, 2]
    weights = store.load_weights(together[0].run_id)
    assert all(t.is_contiguous() for t in weights.values())  # saved whole, not as views into the stack


def test_the_trained_weights_are_each_runs_own(three_ways):
    _, _, together, store = three_ways
    first, second = (store.load_weights(r.run_id) for r in together[:2])
    assert not torch.equal(first["model.trunk.0.weight"], second["model.trunk.0.weight"])
    assert not torch.equal(first["model.trunk.1.running_mean"], second["model.trunk.1.running_mean"])


def test_a_diverging_run_drops_out_and_the_others_train_on(tmp_path):
    configs = make_experiment(RunConfig(epochs=2, train_limit=320, experiment="diverge"), ["softmax", "lmd", "amc"])
    configs[1] = configs[1].replace(lr=10.0)  # lmd at lr 10 diverges within two epochs on digits
    reports = []
    records = train_experiment(configs, RunStore(tmp_path / "together"), on_progress=reports.append)
    assert [r.state for r in records] == ["finished", "diverged", "finished"]
    assert "non-finite in epoch" in records[1].status["message"]
    assert "lower learning rate than 10" in records[1].status["message"]
    assert [p.status for p in reports if p.run_index == 1 and p.status] == ["diverged"]
    # the others train as they do one by one, up to rounding (a few steps: rounding differences grow with every step)
    for index in (0, 2):
        alone = train_run(configs[index], RunStore(tmp_path / f"alone{index}"))
        _close(alone.metrics, records[index].metrics, accuracy=0.1)


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


def test_runs_group_when_only_loss_learning_rate_weight_decay_and_seed_differ():
    base = RunConfig(experiment="groups")
    configs = [
        base,
        base.replace(loss="amc", lr=0.05, weight_decay=1e-3, seed=3),
        base.replace(model="lenetpp"),
        base.replace(loss="opl"),
        base.replace(optimizer="adam"),
        base.replace(model="lenetpp", loss="amc"),
        base.replace(epochs=3),
    ]
    assert fused.fusable_groups(configs) == [[0, 1, 3], [2, 5], [4], [6]]
    assert fused.fusable_groups(configs, limit=2) == [[0, 1], [2, 5], [3], [4], [6]]


def test_every_registered_model_can_be_stacked():
    import models

    for name in models.names():
        dataset = "cifar10" if name == "resnet8" else "digits"
        assert fused.stackable(RunConfig(model=name, dataset=dataset)), name


def test_a_model_that_cannot_be_stacked_trains_its_runs_one_by_one(tmp_path, monkeypatch):
    import models

    built = models.build

    class Unbatchable(torch.nn.Module):
        """``.item()`` reads one number: vmap cannot batch it."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, images):
            return self.inner(images) * images.mean().item()

    monkeypatch.setattr(fused, "_STACKABLE", {})
    monkeypatch.setattr(fused.models, "build", lambda *args: Unbatchable(built(*args)))
    configs = [RunConfig(experiment="alone"), RunConfig(experiment="alone", loss="amc")]
    assert not fused.stackable(configs[0])
    assert fused.fusable_groups(configs) == [[0], [1]]
