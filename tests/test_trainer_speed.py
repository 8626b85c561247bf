"""The trainer's fast path keeps its behaviour: the channels-last switch, divergence found at its exact
step without a per-step sync, data shared across an experiment's runs, and no evaluation repeated."""

from __future__ import annotations

import pytest
import torch

import lab.training.loop as trainer
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.training import device_data
from lab.training.loop import train_experiment, train_run
from lab.training.watch import Diverged, LossWatch


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


class _FakeEvent:
    def record(self) -> None:
        pass

    def synchronize(self) -> None:
        pass


class _CpuLaggedWatch(LossWatch):
    """The accelerator path (read one step late) with CPU buffers, so it runs without a GPU."""

    def _buffers(self):
        return torch.empty(self.SLOTS), [_FakeEvent() for _ in range(self.SLOTS)]


def test_the_lagged_loss_watch_names_the_exact_step_one_step_later():
    watch = _CpuLaggedWatch(torch.device("cpu"), lagged=True)
    for step in (1, 2, 3):
        watch.record(torch.tensor(1.0), 1, step)
    watch.record(torch.tensor(float("nan")), 1, 4)  # not read yet: the device would still be busy
    with pytest.raises(Diverged, match="epoch 1, step 4"):
        watch.record(torch.tensor(1.0), 1, 5)


def test_the_lagged_loss_watch_finds_a_last_step_divergence_on_flush():
    watch = _CpuLaggedWatch(torch.device("cpu"), lagged=True)
    watch.record(torch.tensor(1.0), 2, 1)
    watch.record(torch.tensor(float("inf")), 2, 2)
    with pytest.raises(Diverged, match="the loss became inf in epoch 2, step 2"):
        watch.flush()
    watch.flush()  # nothing left


def test_an_experiment_prepares_its_data_once_and_evaluates_once_per_epoch(tmp_path, monkeypatch):
    prepared, embedded = [], []
    original_tensors, original_embed = device_data._training_tensors, trainer.embed
    monkeypatch.setattr(device_data, "_training_tensors", lambda *a: prepared.append(a) or original_tensors(*a))
    monkeypatch.setattr(trainer, "embed", lambda *a: embedded.append(a) or original_embed(*a))
    configs = [RunConfig(epochs=2, loss=loss, experiment="shared") for loss in ("softmax", "amc", "opl")]
    for lockstep in (True, False):
        prepared.clear()
        embedded.clear()
        records = train_experiment(configs, RunStore(tmp_path / str(lockstep)), lockstep=lockstep)
        assert [r.state for r in records] == ["finished"] * 3
        assert len(prepared) == 2  # the training and the test split, once for all three runs
        # per run: the snapshot subset before training, then one evaluation per epoch (digits' 360 test images
        # are fewer than the evaluation subset: the whole test set), which the final features reuse
        assert len(embedded) == 3 * (1 + 2)


def test_with_an_evaluation_subset_the_whole_test_set_is_embedded_once_at_the_end(tmp_path, monkeypatch):
    sizes = []
    original_embed = trainer.embed
    monkeypatch.setattr(
        trainer,
        "embed",
        lambda model, head, images, device: sizes.append(len(images)) or original_embed(model, head, images, device),
    )
    train_run(RunConfig(epochs=3, train_limit=256, snapshot_points=50, eval_images=100), RunStore(tmp_path))
    assert sizes == [50, 100, 100, 100, 360]  # epoch 0: the snapshot subset; then the evaluation subset; the end: all
