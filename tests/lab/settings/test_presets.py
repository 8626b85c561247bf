"""The papers' presets: each builds its runs, says what to look for, and falls back to a dataset that is there."""

from __future__ import annotations

import pytest

from lab.settings import presets
from tests.conftest import write_idx_dataset


@pytest.mark.parametrize("name", presets.names())
def test_every_preset_builds_its_runs_and_says_what_to_look_for(name):
    preset = presets.get(name)
    configs = preset.configs()
    assert len(configs) == preset.n_runs and len({c.experiment for c in configs}) == 1
    assert name in configs[0].experiment
    assert {c.seed for c in configs} == set(preset.seeds)
    assert preset.title and preset.showed and preset.look_for and "Look for:" in preset.sentence()
    assert 0 < preset.seconds <= 600 and preset.measured, "measured, and a few minutes at most"


def test_the_presets_are_the_papers_experiments():
    assert presets.names() == [
        "lsoftmax-fig2",
        "center-lambda",
        "amc-gradcam",
        "opl-vs-ce",
        "lmd-vs-softmax",
        "face-margins",
    ]
    fig2 = presets.get("lsoftmax-fig2").configs()
    assert [c.loss_params["margin"] for c in fig2] == [1, 2, 3, 4] and {c.feat_dim for c in fig2} == {2}
    center = presets.get("center-lambda").configs()
    assert [c.loss_params["weight"] for c in center] == [0.0001, 0.001, 0.01, 0.1]
    assert {c.loss_params["alpha"] for c in center} == {0.5}
    faces = presets.get("face-margins").configs()
    assert {c.loss for c in faces} == {"softmax", "sphereface", "cosface", "arcface"} and {
        c.feat_dim for c in faces
    } == {3}
    for name, losses in (("amc-gradcam", {"softmax", "amc"}), ("opl-vs-ce", {"softmax", "opl"})):
        configs = presets.get(name).configs()
        assert {c.loss for c in configs} == losses and {c.seed for c in configs} == {0, 1, 2}
    assert {c.loss for c in presets.get("lmd-vs-softmax").configs()} == {"softmax", "lmd"}


def test_a_preset_falls_back_from_mnist_to_fashion_mnist_to_digits_with_a_note(tmp_path, monkeypatch):
    fig2 = presets.get("lsoftmax-fig2")
    monkeypatch.setenv("LOSSLENS_DATA_DIR", str(tmp_path / "data"))
    empty = tmp_path / "empty"
    empty.mkdir()
    dataset, note = fig2.choose_dataset(str(empty))
    assert dataset == "digits" and "8x8 digits" in note
    fashion = tmp_path / "fashion"
    write_idx_dataset(fashion)
    # a data root holding IDX files counts for MNIST first: the files say nothing of which set they are, and the
    # note says how to pick the other
    dataset, note = fig2.choose_dataset(str(fashion))
    assert dataset == "mnist" and "--dataset fashion-mnist" in note
    amc = presets.get("amc-gradcam")
    dataset, note = amc.choose_dataset(str(empty))
    assert dataset == "mnist" and "will try to download" in note, "no 8x8 stand-in for a 28x28 preset"
