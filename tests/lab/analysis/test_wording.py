"""What the app states about a run, as pure functions: one rounding rule for accuracies, which figure is the
run's test accuracy and how an epoch's accuracy is named, and what classes on one ray mean for each head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import losses
from lab.analysis import wording
from lab.runs.record import RunRecord
from lab.settings.config import RunConfig


def _record(state: str, test_acc: float, metrics: list[dict] | None = None) -> RunRecord:
    return RunRecord("run", Path("run"), RunConfig(), {"status": state, "test_acc": test_acc}, metrics or [])


# ---------------------------------------------------------------- one number, one rounding rule


def test_one_rounding_rule_whether_an_accuracy_was_stored_as_float32_or_computed_in_float64():
    assert wording.percent_text(0.8634999990463257) == wording.percent_text(0.8635) == "86.4%"
    for n in (360, 2000, 10000):
        for correct in range(n + 1):
            exact = correct / n
            assert wording.percent(float(np.float32(exact))) == wording.percent(exact), (correct, n)
    assert wording.percent_text(0.125, 0) == "13%" and wording.percent_text(0.12345, 2) == "12.35%"  # half up
    assert wording.percent_text(1.0) == "100.0%" and wording.percent_text(0.0) == "0.0%"


def test_the_test_accuracy_is_the_whole_test_set_measured_when_the_run_ended():
    assert wording.test_accuracy(_record("finished", 0.86)) == 0.86
    assert wording.test_accuracy(_record("stopped", 0.5)) == 0.5
    for state in ("running", "diverged", "failed", "interrupted"):  # their status holds an epoch's subset figure
        assert wording.test_accuracy(_record(state, 0.8)) is None


def test_an_epochs_accuracy_is_named_by_what_it_was_measured_on():
    assert wording.frame_accuracy(3, 0.8679, 2000, 10000) == "epoch 3 · accuracy 86.8% on 2,000 test images"
    assert wording.frame_accuracy(3, 0.8679, 10000, 10000) == "epoch 3 · test accuracy 86.8%"
    assert wording.frame_accuracy(10, 0.8679, 2000, 10000, final=0.8635) == "epoch 10 · test accuracy 86.4%"
    assert wording.frame_accuracy(0, 0.1, 500, 10000) == "before training · accuracy 10.0% on the 500 images shown"
    assert wording.frame_accuracy(2, 0.5, None, 10000) == "epoch 2 · accuracy 50.0% on a test subset"
    assert wording.frame_accuracy(2, None, None, 10000) == "epoch 2"
    record = _record("finished", 0.9, [{"epoch": 1, "eval_images": 250}, {"epoch": 2}])
    assert wording.eval_images(record, 1) == 250 and wording.eval_images(record, 2) is None


# ---------------------------------------------------------------- classes on one ray, head by head


@pytest.mark.parametrize("name", losses.names())
def test_a_head_decides_by_angle_alone_exactly_when_it_has_no_bias(name):
    """The declaration the same-ray note relies on, checked against each head's inference logits: without a
    bias a feature's class never changes with its length, and the class directions give the decisions;
    with a (nonzero) bias, some feature changes class with its length."""
    torch.manual_seed(0)
    head = losses.build(name, 3, 6)
    with torch.no_grad():
        for parameter in head.parameters():
            parameter.normal_()
    features = torch.randn(400, 3)
    classes = head.logits(features).argmax(1)
    by_length = [head.logits(features * scale).argmax(1) for scale in (0.01, 100.0)]
    if wording.decides_by_angle(name):
        assert all(torch.equal(classes, other) for other in by_length)
        assert torch.equal(classes, (features @ head.class_directions().T).argmax(1))
    else:
        assert head.classifier.bias is not None
        assert not torch.equal(by_length[0], by_length[1])


def _same_ray_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four class directions, 1 and 2 on one ray (2 twice as long), and features whose decisions by those
    directions are known: class 1's four images all go to class 2, class 2's two stay."""
    directions = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 0.0], [0.0, -1.0]])
    features = np.array([[0.1, 1], [1, 0.1], [1, -0.1], [2, 0.2], [2, 0], [1, 0.3], [0.9, 0.1], [0, -1]])
    labels = np.array([0, 1, 1, 1, 1, 2, 2, 3])
    return directions, features, labels


def test_a_head_with_a_bias_is_said_to_tell_one_rays_classes_apart_by_length():
    directions, features, labels = _same_ray_case()
    note = wording.same_ray_note(directions, "abcd", "circle", "Softmax", False, features, labels)
    assert note.startswith("On the unit circle, classes b and c share a direction (0.0° apart)")
    assert "Softmax's classifier has a bias, so it can still tell them apart by length (radius)" in note
    assert "decides by angle" not in note


def test_a_bias_free_head_is_said_to_confuse_one_rays_classes_by_how_much():
    directions, features, labels = _same_ray_case()
    note = wording.same_ray_note(directions, "abcd", "circle", "L-Softmax", True, features, labels)
    assert "L-Softmax has no bias and decides by angle alone" in note
    assert "differ in length" not in note and "apart by length" not in note
    assert "; it takes 67% of their 6 images shown for another class on the same ray." in note  # 4 of 6
    assert wording.same_ray_note(directions[[0, 1, 3]], "abd", "circle", "CosFace", True) == ""
