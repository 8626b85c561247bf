"""Tests every registered loss gets for free (timm style): parametrised over ``losses.names()``."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import losses
import models
from losses.base import HparamSpec, hparam_specs

LOSSES = losses.names()
FEAT_DIMS = (2, 3, 16)
N_CLASSES = 4


def make_head(name: str, feat_dim: int, n_classes: int = N_CLASSES, seed: int = 0) -> losses.LossHead:
    torch.manual_seed(seed)
    head = losses.build(name, feat_dim, n_classes)
    head.plan(100)
    return head


def assert_finite_forward(head: losses.LossHead, features: torch.Tensor, labels: torch.Tensor) -> None:
    features = features.clone().requires_grad_()
    total, terms = head(features, labels)
    assert total.shape == () and torch.isfinite(total), f"loss {total}"
    assert "ce" in terms or len(terms) >= 1
    for term, value in terms.items():
        assert value.shape == () and torch.isfinite(value), f"term {term} = {value}"
    total.backward()
    assert torch.isfinite(features.grad).all()
    for name, parameter in head.named_parameters():
        assert parameter.grad is None or torch.isfinite(parameter.grad).all(), name


def labelled_batch(kind: str, feat_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(len(kind) + feat_dim)
    labels = {
        "odd batch of 7": torch.tensor([0, 1, 2, 3, 0, 1, 2]),
        "batch of 1": torch.tensor([2]),
        "single class": torch.full((6,), 1),
        "all labels distinct": torch.arange(N_CLASSES),
    }[kind]
    return torch.randn(len(labels), feat_dim, generator=generator) * 3, labels


@pytest.mark.parametrize("kind", ["odd batch of 7", "batch of 1", "single class", "all labels distinct"])
@pytest.mark.parametrize("feat_dim", FEAT_DIMS)
@pytest.mark.parametrize("name", LOSSES)
def test_loss_terms_and_gradients_are_finite(name: str, feat_dim: int, kind: str) -> None:
    head = make_head(name, feat_dim)
    features, labels = labelled_batch(kind, feat_dim)
    head.train()
    for _ in range(3):  # later steps meet stored state (centers, step counters)
        assert_finite_forward(head, features, labels)
    head.eval()
    assert_finite_forward(head, features, labels)


@pytest.mark.parametrize("name", LOSSES)
def test_half_precision_features_give_a_float32_loss(name: str) -> None:
    head = make_head(name, 3)
    head.train()
    features, labels = labelled_batch("odd batch of 7", 3)
    total, _ = head(features.half(), labels)
    assert total.dtype == torch.float32 and torch.isfinite(total)


@pytest.mark.parametrize("feat_dim", FEAT_DIMS)
@pytest.mark.parametrize("name", LOSSES)
def test_gradients_reach_every_parameter_of_model_and_head(name: str, feat_dim: int) -> None:
    torch.manual_seed(0)
    model = models.build("small", 1, 8, feat_dim)
    head = make_head(name, feat_dim)
    model.train()
    head.train()
    images = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(16) % N_CLASSES
    total, _ = head(model(images), labels)
    total.backward()
    for owner, module in (("model", model), ("head", head)):
        for parameter_name, parameter in module.named_parameters():
            where = f"{owner}.{parameter_name}"
            assert parameter.grad is not None, f"no gradient reaches {where}"
            assert torch.isfinite(parameter.grad).all(), where
            assert parameter.grad.abs().sum() > 0, f"zero gradient at {where}"


@pytest.mark.parametrize("feat_dim", FEAT_DIMS)
@pytest.mark.parametrize("name", LOSSES)
def test_logits_have_one_column_per_class_and_ignore_mode_and_labels(name: str, feat_dim: int) -> None:
    head = make_head(name, feat_dim, n_classes=5)
    features = torch.randn(9, feat_dim, generator=torch.Generator().manual_seed(2))
    head.eval()
    eval_logits = head.logits(features)
    assert eval_logits.shape == (9, 5)
    head.train()
    assert torch.equal(head.logits(features), eval_logits)
    with torch.no_grad():
        head(features, torch.zeros(9, dtype=torch.long))
    after_labels_a = head.logits(features)
    with torch.no_grad():
        head(features, torch.arange(9) % 5)
    after_labels_b = head.logits(features)
    assert torch.equal(after_labels_a, after_labels_b), "logits depend on the labels of the last training call"
    assert torch.equal(after_labels_a, eval_logits), "logits changed by a training forward (margin or state leak)"


@pytest.mark.parametrize("feat_dim", (2, 16))
@pytest.mark.parametrize("name", LOSSES)
def test_state_survives_a_safetensors_round_trip(name: str, feat_dim: int, tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(3)
    batches = [
        (torch.randn(8, feat_dim, generator=generator), torch.randint(0, N_CLASSES, (8,), generator=generator))
        for _ in range(6)
    ]
    head = make_head(name, feat_dim, seed=0)
    head.train()
    for features, labels in batches[:4]:
        head(features, labels)
    save_file(head.state_dict(), str(tmp_path / "head.safetensors"))
    restored = make_head(name, feat_dim, seed=1)
    restored.load_state_dict(load_file(str(tmp_path / "head.safetensors")))
    restored.train()
    for features, labels in batches[4:]:
        expected, expected_terms = head(features, labels)
        got, got_terms = restored(features, labels)
        assert torch.equal(got, expected)
        assert got_terms.keys() == expected_terms.keys()
        assert all(torch.equal(got_terms[k], expected_terms[k]) for k in expected_terms)
    for key, value in head.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key


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


def separable_clusters() -> tuple[torch.Tensor, torch.Tensor]:
    """60 points in 3 well-separated 2-D Gaussian clusters."""
    generator = torch.Generator().manual_seed(4)
    centers = torch.tensor([[4.0, 0.0], [-2.0, 3.5], [-2.0, -3.5]])
    labels = torch.arange(3).repeat(20)
    return centers[labels] + 0.3 * torch.randn(60, 2, generator=generator), labels


@pytest.mark.parametrize("feat_dim", FEAT_DIMS)
@pytest.mark.parametrize("name", LOSSES)
def test_loss_decreases_on_a_separable_set(name: str, feat_dim: int) -> None:
    points, labels = separable_clusters()
    torch.manual_seed(0)
    feature_map = torch.nn.Linear(2, feat_dim)
    head = make_head(name, feat_dim, n_classes=3)
    head.train()
    optimiser = torch.optim.Adam([*feature_map.parameters(), *head.parameters()], lr=0.02)
    values = []
    for _ in range(100):
        total, _ = head(feature_map(points), labels)
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        values.append(total.item())
    assert all(math.isfinite(v) for v in values)
    assert sum(values[-5:]) / 5 < 0.8 * sum(values[:5]) / 5, f"first {values[:5]}, last {values[-5:]}"
    if feat_dim >= 3:
        # In 2-D a purely angular head can get stuck with the classes in the wrong cyclic order around
        # the circle (they cannot pass each other); from 3-D on, every loss must separate the clusters.
        accuracy = (head.logits(feature_map(points)).argmax(1) == labels).float().mean().item()
        assert accuracy == 1.0


@pytest.mark.parametrize("name", LOSSES)
def test_defaults_validate_and_are_listed_with_summary_paper_and_docs(name: str) -> None:
    listed = {info.name: info for info in losses.available()}
    info = listed[name]
    cls = losses.get(name)
    assert info.summary and "\n" not in info.summary
    assert cls.paper.strip()
    assert (sys.modules[cls.__module__].__doc__ or "").strip(), "module docstring (formula, plots) missing"
    specs = hparam_specs(cls.Params)
    assert info.defaults == {spec.name: spec.default for spec in specs}
    assert losses.make_params(name, {}) == losses.make_params(name, info.defaults) == cls.Params()
    for spec in specs:
        assert spec.help.strip(), f"{name}.{spec.name} has no help text"
    assert all(isinstance(w, str) for d in FEAT_DIMS for w in losses.warnings_for(name, d, 10))


def test_the_registry_lists_every_loss_once() -> None:
    assert len(LOSSES) == len(set(LOSSES))
    assert [info.name for info in losses.available()] == LOSSES
    assert "softmax" in LOSSES


def bad_values(spec: HparamSpec) -> list[object]:
    """Values that must be refused for this hyperparameter."""
    if spec.kind is str:
        return ["not-a-choice", 3, None]
    if spec.kind is bool:
        return ["maybe", 2.5, None]
    values: list[object] = [math.nan, math.inf, -math.inf, "abc", [1.0], None, True]
    if spec.low is not None:
        values.append(spec.low - 1.0)
        if not spec.low_inclusive:
            values.append(spec.low)
    if spec.high is not None:
        values.append(spec.high + 1.0)
    if spec.kind is int:
        values.append(1.5)
    return values


HPARAM_CASES = [
    pytest.param(name, spec, value, id=f"{name}.{spec.name}={value!r}")
    for name in LOSSES
    for spec in hparam_specs(losses.get(name).Params)
    for value in bad_values(spec)
]


@pytest.mark.parametrize(("name", "spec", "value"), HPARAM_CASES)
def test_bad_hyperparameters_are_refused_naming_the_field(name: str, spec: HparamSpec, value: object) -> None:
    with pytest.raises(losses.HparamError, match=rf"^{name}\.{spec.name}: "):
        losses.make_params(name, {spec.name: value})
    with pytest.raises(losses.HparamError, match=rf"^{name}\.{spec.name}: "):
        losses.build(name, 2, 10, **{spec.name: value})


@pytest.mark.parametrize("name", LOSSES)
def test_unknown_hyperparameters_are_refused_naming_the_loss(name: str) -> None:
    with pytest.raises(losses.HparamError, match=rf"^{name}: unknown hyperparameter no_such_setting"):
        losses.make_params(name, {"no_such_setting": 1})


def test_an_unknown_loss_is_refused_with_the_choices() -> None:
    with pytest.raises(losses.HparamError, match="softmax"):
        losses.get("no-such-loss")


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_declares_its_teaching_text(name: str) -> None:
    cls = losses.get(name)
    assert cls.title.strip() and "\n" not in cls.title
    assert cls.formula_latex.strip() and "=" in cls.formula_latex
    sentences = [s for s in cls.lesson.split(". ") if s.strip()]
    assert len(sentences) >= 2 and "\n" not in cls.lesson
    assert "RESULTS.md" not in cls.lesson and "``" not in cls.lesson, "the lesson is for students, not developers"
    docstring = sys.modules[cls.__module__].__doc__ or ""
    measured = re.findall(r"\d+\.\d+ ?%", docstring)
    assert not measured, f"accuracy figures {measured} belong in bench/RESULTS.md, not the docstring"
    assert "bench/RESULTS.md" in docstring, "the docstring points to where the figures are"


@pytest.mark.parametrize(
    ("head_dtype", "feature_dtype"),
    [(torch.float64, torch.float64), (torch.float64, torch.float32), (torch.float32, torch.float64)],
)
@pytest.mark.parametrize("name", LOSSES)
def test_features_are_cast_to_the_head_dtype(name: str, head_dtype: torch.dtype, feature_dtype: torch.dtype) -> None:
    head = make_head(name, 3).to(head_dtype).train()
    features, labels = labelled_batch("odd batch of 7", 3)
    features = features.to(feature_dtype).requires_grad_()
    total, terms = head(features, labels)
    total.backward()
    assert total.dtype == head_dtype and all(value.dtype == head_dtype for value in terms.values())
    assert head.logits(features).dtype == head_dtype
    assert features.grad.dtype == feature_dtype and torch.isfinite(features.grad).all()


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
    features, labels = labelled_batch("odd batch of 7", 2)
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


def test_a_loss_without_its_table_in_about_toml_is_refused() -> None:
    class Unlisted(losses.get("softmax")):
        name = "unlisted"

    with pytest.raises(ValueError, match="about.toml has no title, summary, paper, formula_latex, lesson"):
        losses.register(Unlisted)
    assert "unlisted" not in losses.names()
