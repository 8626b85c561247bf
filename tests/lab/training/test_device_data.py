"""The dataset held on the device: prepared once for all the runs of an experiment, a run trained on shared data
trains as on its own, and data of another dataset refused."""

from __future__ import annotations

import pytest

import lab.training.loop as trainer
from lab.datasets import load_dataset
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.training import device_data
from lab.training.device_data import DeviceData
from lab.training.loop import train_experiment, train_run


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


def test_a_run_trains_the_same_on_shared_device_data_as_on_its_own(tmp_path):
    config = RunConfig(epochs=1, train_limit=256)
    alone = train_run(config, RunStore(tmp_path / "a"))
    data = DeviceData(load_dataset("digits"), "cpu")
    shared = train_run(config, RunStore(tmp_path / "b"), data=data)
    again = train_run(config, RunStore(tmp_path / "c"), data=data)
    strip = lambda metrics: [{k: v for k, v in m.items() if k not in ("seconds", "images_per_second")} for m in metrics]
    assert strip(alone.metrics) == strip(shared.metrics) == strip(again.metrics)
    assert data.train(256)[0] is data.train(256)[0]  # made once, then shared


def test_device_data_of_another_dataset_is_refused(tmp_path):
    data = DeviceData(load_dataset("digits"), "cpu")
    with pytest.raises(ValueError, match="the shared data is digits on cpu; this run trains on mnist"):
        train_run(RunConfig(dataset="mnist", epochs=1), RunStore(tmp_path), data=data)
    assert not any(tmp_path.iterdir())  # refused before a run folder was made
