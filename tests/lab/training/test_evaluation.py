"""What a run measures on the test set: the evaluation subset each epoch, the whole test set once at the end, and
the subset that is the whole test set when it would hold all of it."""

from __future__ import annotations

import pytest
import torch

import lab.training.loop as trainer
from lab.datasets import load_dataset
from lab.runs.restore import load_trained
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.training.evaluation import evaluation_indices, snapshot_indices
from lab.training.loop import train_run


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


def test_each_epoch_measures_the_evaluation_subset_and_the_end_the_whole_test_set(tmp_path):
    store = RunStore(tmp_path)
    config = RunConfig(epochs=2, train_limit=512, snapshot_points=50, eval_images=200)
    record = train_run(config, store)
    digits = load_dataset("digits")
    subset = evaluation_indices(len(digits.test), 200, 50)
    assert len(subset) == 200 and set(snapshot_indices(len(digits.test), 50).tolist()) <= set(subset.tolist())
    assert [m["eval_images"] for m in record.metrics] == [200, 200]
    model, head = load_trained(store, record)
    with torch.inference_mode():
        predicted = head.logits(model(digits.test.normalized)).argmax(1)
    whole = float((predicted == digits.test.labels).float().mean())
    on_subset = float((predicted[subset] == digits.test.labels[subset]).float().mean())
    assert record.metrics[-1]["test_acc"] == pytest.approx(on_subset, abs=1e-6)
    assert record.status["test_acc"] == pytest.approx(whole, abs=1e-6)
    assert on_subset != whole  # a different set of images: the final figure is the whole test set's
    snapshots = store.load_snapshots(record.run_id)
    assert snapshots.test_acc[1:].tolist() == pytest.approx([m["test_acc"] for m in record.metrics])
    features = store.load_features(record.run_id)
    assert features.test_features.shape[0] == len(digits.test)
    assert torch.allclose(snapshots.features[-1], features.test_features[features.snapshot_indices], atol=1e-5)


def test_evaluating_a_subset_leaves_training_and_the_final_accuracy_unchanged(tmp_path):
    config = RunConfig(epochs=2, train_limit=512, snapshot_points=50)
    subset = train_run(config.replace(eval_images=100), RunStore(tmp_path / "subset"))
    whole = train_run(config.replace(eval_images=0), RunStore(tmp_path / "whole"))
    assert [m["eval_images"] for m in whole.metrics] == [len(load_dataset("digits").test)] * 2
    assert [m["train_loss"] for m in subset.metrics] == [m["train_loss"] for m in whole.metrics]
    assert subset.status["test_acc"] == whole.status["test_acc"]


def test_the_evaluation_subset_is_the_whole_test_set_when_it_would_hold_all_of_it():
    assert evaluation_indices(360, 0, 50) is None
    assert evaluation_indices(360, 2000, 50) is None
    assert evaluation_indices(360, 100, 500) is None  # the snapshot subset alone covers the test set
    assert len(evaluation_indices(10_000, 100, 500)) == 500  # never fewer than the snapshot subset
    first, again = evaluation_indices(10_000, 2000, 500), evaluation_indices(10_000, 2000, 500)
    assert torch.equal(first, again) and torch.equal(first, first.sort().values)
