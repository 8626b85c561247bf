"""Tests every registered loss gets for free (timm style): parametrised over ``losses.names()`` and, when
pytorch-metric-learning is installed, the ``pml:`` adapter's losses. The contract itself is
:mod:`losses.contract`, run here with the context ``python -m lab check-loss`` gives a user's loss, so a
plug-in is held to exactly what the built-in losses are."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import losses
from lab.cli.commands.check_loss import CONTEXT
from losses import contract, pml
from losses.base import hparam_specs

LOSSES = losses.names()
ADAPTED = [f"pml:{name}" for name in pml.CLASSES] if pml.installed() else []
N_CLASSES = 4


def make_head(name: str, feat_dim: int, n_classes: int = N_CLASSES, seed: int = 0) -> losses.LossHead:
    return contract.make_head(name, feat_dim, n_classes, seed)


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda check: check.id)
@pytest.mark.parametrize("name", LOSSES + ADAPTED)
def test_every_loss_keeps_the_contract(name: str, check: contract.Check) -> None:
    """finite losses and gradients, precision, logits without margins, state in buffers and restored, ...
    (each check's failure says what is wrong and what to change)."""
    check(name, CONTEXT)


WEIGHTED = [name for name in LOSSES if "weight" in {spec.name for spec in hparam_specs(losses.get(name).Params)}]


@pytest.mark.parametrize("feat_dim", (2, 3))
@pytest.mark.parametrize("name", WEIGHTED)
def test_weight_zero_gives_plain_cross_entropy_bit_for_bit(name: str, feat_dim: int) -> None:
    """Every loss that adds lambda times a feature term to cross-entropy is softmax at lambda = 0."""
    assert {"amc", "center", "lmd", "opl"} <= set(WEIGHTED)
    torch.manual_seed(0)
    head = losses.build(name, feat_dim, 10, weight=0.0)
    torch.manual_seed(0)
    softmax = losses.build("softmax", feat_dim, 10)
    features = torch.randn(32, feat_dim, requires_grad=True)
    labels = torch.randint(0, 10, (32,))
    total, _ = head(features, labels)
    (grad,) = torch.autograd.grad(total, features)
    softmax_total, _ = softmax(features, labels)
    (softmax_grad,) = torch.autograd.grad(softmax_total, features)
    assert torch.equal(total, softmax_total)
    assert torch.equal(grad, softmax_grad)


def test_the_registry_lists_every_loss_once() -> None:
    assert len(LOSSES) == len(set(LOSSES))
    assert [info.name for info in losses.available()] == losses.names()
    assert losses.names()[: len(LOSSES)] == LOSSES  # the adapter's losses, once used, come after
    assert "softmax" in LOSSES


def test_an_unknown_loss_is_refused_with_the_choices() -> None:
    with pytest.raises(losses.HparamError, match="softmax"):
        losses.get("no-such-loss")


@pytest.mark.parametrize("name", LOSSES)
def test_every_built_in_loss_declares_its_paper_lesson_and_docstring(name: str) -> None:
    """What the contract leaves optional for a user's own loss, LossLens's own must have."""
    cls = losses.get(name)
    assert cls.paper.strip() and cls.lesson.strip()
    assert "RESULTS.md" not in cls.lesson and "``" not in cls.lesson, "the lesson is for students, not developers"
    docstring = sys.modules[cls.__module__].__doc__ or ""
    measured = re.findall(r"\d+\.\d+ ?%", docstring)
    assert not measured, f"accuracy figures {measured} belong in bench/RESULTS.md, not the docstring"
    assert "bench/RESULTS.md" in docstring, "the docstring points to where the figures are"


NORMALIZING = ["amc", "opl", "cosface", "arcface"]


@pytest.mark.parametrize("name", NORMALIZING)
def test_a_zero_feature_gets_a_bounded_gradient_that_does_not_dominate_the_step(name: str) -> None:
    """Normalizing f divides its gradient by |f|: F.normalize gives a feature of length ~0 a gradient of
    ~1e11. The heads floor the length at a tenth of the batch's mean, so the zero feature's gradient is
    of the order of the others' and a minor share of the batch's total."""
    assert set(NORMALIZING) < set(LOSSES)
    head = make_head(name, 2, n_classes=4).train()
    generator = torch.Generator().manual_seed(7)
    labels = torch.arange(32) % 4
    features = torch.randn(32, 2, generator=generator) * 3
    for zero in (torch.zeros(2), torch.full((2,), 1e-11)):
        batch = torch.cat([zero.unsqueeze(0), features]).requires_grad_()
        total, _ = head(batch, torch.cat([torch.tensor([1]), labels]))
        total.backward()
        per_sample = batch.grad.norm(dim=1)
        assert torch.isfinite(per_sample).all()
        assert per_sample[0] <= 10 * per_sample[1:].max(), f"{per_sample[0]} vs at most {per_sample[1:].max()}"
        assert per_sample[0] <= 0.3 * per_sample.sum(), "one sample of 33 must not dominate the step"


@pytest.mark.parametrize("name", LOSSES)
def test_state_advances_once_per_training_forward_and_never_in_eval(name: str) -> None:
    """The contract of losses.base: one training-mode forward is one optimizer step."""
    head = make_head(name, 2)
    features, labels = contract.labelled_batch("odd batch of 7", 2)
    head.eval()
    before = {key: value.clone() for key, value in head.state_dict().items()}
    head(features, labels)
    assert all(torch.equal(before[key], value) for key, value in head.state_dict().items()), "eval changed state"
    head.train()
    for step in (1, 2):
        head(features, labels)
        if head.scheduled:
            assert int(head.step) == step
    stateful = [key for key, value in head.state_dict().items() if not torch.equal(before[key], value)]
    expected = {"center": {"centers"}, "lmd": {"centers", "seen"}}.get(name, {"step"} if head.scheduled else set())
    assert set(stateful) == expected


EXAMPLE_RUNS = Path(__file__).resolve().parents[2] / "assets" / "example-runs"


@pytest.mark.parametrize("run", sorted(p.name for p in EXAMPLE_RUNS.glob("example-*")))
def test_heads_saved_by_older_runs_still_load(run: str) -> None:
    """The shipped example runs were saved before LMD's ``centres`` became ``centers`` and before AMC
    kept a step counter; their head state must load strictly into today's heads."""
    import json

    config = json.loads((EXAMPLE_RUNS / run / "config.json").read_text())
    state = {
        key.removeprefix("head."): value
        for key, value in load_file(str(EXAMPLE_RUNS / run / "weights.safetensors")).items()
        if key.startswith("head.")
    }
    head = losses.build(config["loss"], config["feat_dim"], 10, **config["loss_params"])
    head.load_state_dict(state, strict=True)
    assert torch.equal(head.classifier.weight, state["classifier.weight"])
    if "centres" in state:
        assert torch.equal(head.centers, state["centres"])


@pytest.mark.parametrize("name", LOSSES)
def test_heads_without_bias_warn_that_2d_features_leave_them_only_the_angle(name: str) -> None:
    assert {n for n in LOSSES if not losses.get(n).bias} == {"lsoftmax", "sphereface", "cosface", "arcface"}
    angle_only = [w for w in losses.warnings_for(name, 2, 10) if "no bias" in w and "angle" in w]
    assert len(angle_only) == (0 if losses.get(name).bias else 1)
    assert not any("no bias" in w for w in losses.warnings_for(name, 3, 10))


def test_a_loss_outside_about_toml_must_declare_its_summary_and_formula_in_its_own_class() -> None:
    class Unlisted(losses.get("softmax")):  # softmax's texts are its, not the subclass's
        name = "unlisted"

    with pytest.raises(ValueError, match=r"has no summary: open its docstring .* and no formula: write its training"):
        losses.register(Unlisted)
    assert "unlisted" not in losses.names()


def test_a_plug_in_docstring_gives_the_summary_and_the_formula() -> None:
    doc = """Softmax on logits divided by T,
    in one paragraph.

    .. math::
        L = \\mathrm{CE}(z / T, y),
        \\quad T > 0

    More text.
    """
    assert losses.registry.docstring_about(doc) == (
        "Softmax on logits divided by T, in one paragraph.",
        "L = \\mathrm{CE}(z / T, y), \\quad T > 0",
    )
