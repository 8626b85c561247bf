"""What the loss contract's checks share: the fault a check raises (what is wrong and what to change), a check's
context and result, and the heads, batches and tiny network they are run on."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Collection
from typing import Any

import torch
from torch import nn

from losses import registry
from losses.base import HparamSpec, LossHead

FEAT_DIMS = (2, 3, 16)
N_CLASSES = 4
BATCH_KINDS = ("odd batch of 7", "batch of 1", "single class", "all labels distinct")


# a hyperparameter whose name says it is a margin must never change the inference logits
MARGIN_NAME = re.compile(r"(^|_)(m|margin)(_|$)|margin")


class Fault(AssertionError):
    """A broken promise of the contract: ``what`` is wrong, ``fix`` what to change."""

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(f"{what}. To fix: {fix}")
        self.what = what
        self.fix = fix


@dataclasses.dataclass(frozen=True)
class Context:
    """What some checks need from the caller: the figures a loss's ``expect`` entries may name (None: not
    checked) and the network that makes features from inputs (default: a small MLP on random inputs)."""

    figures: Collection[str] | None = None
    network: NetworkMaker | None = None


@dataclasses.dataclass(frozen=True)
class Check:
    """One promise of the contract: its id, what it checks in one line, and the function checking it."""

    id: str
    title: str
    function: Callable[[str, Context], None]

    def __call__(self, name: str, context: Context | None = None) -> None:
        self.function(name, context or Context())


@dataclasses.dataclass(frozen=True)
class Result:
    """A check's outcome on one loss: passed, or the fault's message."""

    check: Check
    loss: str
    passed: bool
    message: str = ""


def make_head(name: str, feat_dim: int, n_classes: int = N_CLASSES, seed: int = 0, **hparams: Any) -> LossHead:
    """A fresh head of ``name`` built with the global seed ``seed``, planned for 100 steps."""
    torch.manual_seed(seed)
    head = registry.build(name, feat_dim, n_classes, **hparams)
    head.plan(100)
    return head


def labelled_batch(kind: str, feat_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One of the awkward batches of :data:`BATCH_KINDS`: features of about length 3 and their labels."""
    generator = torch.Generator().manual_seed(len(kind) + feat_dim)
    labels = {
        "odd batch of 7": torch.tensor([0, 1, 2, 3, 0, 1, 2]),
        "batch of 1": torch.tensor([2]),
        "single class": torch.full((6,), 1),
        "all labels distinct": torch.arange(N_CLASSES),
    }[kind]
    return torch.randn(len(labels), feat_dim, generator=generator) * 3, labels


def mlp(feat_dim: int) -> tuple[nn.Module, torch.Tensor]:
    """A small network (linear, batch norm, ReLU, linear) and 16 random inputs: features for the gradient check."""
    network = nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, feat_dim))
    return network, torch.randn(16, 8, generator=torch.Generator().manual_seed(1))


NetworkMaker = Callable[[int], tuple[nn.Module, torch.Tensor]]  # feat_dim -> (network, a batch of its inputs)


def finite_step(head: LossHead, features: torch.Tensor, labels: torch.Tensor, where: str) -> None:
    """One forward and backward; a :class:`Fault` naming the first non-finite value."""
    fix = (
        "guard divisions and logarithms in forward (divide by a clamped norm, e.g. losses.normalize for feature "
        "lengths; clamp cosines to [-1, 1] before acos or sqrt)"
    )
    features = features.clone().requires_grad_()
    total, terms = head(features, labels)
    if not isinstance(total, torch.Tensor) or total.shape != ():
        raise Fault(f"{where}: forward returned a loss of shape {getattr(total, 'shape', type(total))}", _RETURN_FIX)
    if not isinstance(terms, dict) or not terms:
        raise Fault(f"{where}: forward returned no named terms", _RETURN_FIX)
    if not torch.isfinite(total):
        raise Fault(f"{where}: the loss is {total.item()}", fix)
    for term, value in terms.items():
        if not isinstance(value, torch.Tensor) or value.shape != () or not torch.isfinite(value):
            raise Fault(f"{where}: term {term!r} is {value!r}, not a finite scalar tensor", fix)
    total.backward()
    if features.grad is None:
        raise Fault(f"{where}: no gradient reaches the features", "compute the loss from the features it is given")
    if not torch.isfinite(features.grad).all():
        raise Fault(f"{where}: the features' gradient is not finite", fix)
    for parameter_name, parameter in head.named_parameters():
        if parameter.grad is not None and not torch.isfinite(parameter.grad).all():
            raise Fault(f"{where}: the gradient of {parameter_name} is not finite", fix)


_RETURN_FIX = (
    "forward(features, labels) returns (total, terms): the loss as a scalar tensor and a dict of named scalar "
    'tensors to plot, e.g. (ce, {"ce": ce})'
)


BUFFER_FIX = (
    "keep state in buffers: self.register_buffer('steps', torch.zeros((), dtype=torch.long)) in __init__, "
    "updated in place (self.steps += 1), so state_dict() saves it with the run"
)


LOGITS_FIX = (
    "logits(features) must be the loss's plain class scores, computed from the features and the weights alone: "
    "no margin (it belongs in forward, where the labels are), no labels or state a training call left behind"
)


def head_state(head: LossHead) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in head.state_dict().items()}


def plain_values(module: nn.Module) -> dict[str, Any]:
    """Every plain attribute (not a parameter, buffer or submodule) of ``module`` and its submodules whose value
    can be compared: numbers, text, tensors and lists, tuples and dicts of them."""
    found = {}
    for prefix, each in module.named_modules():
        for key, value in vars(each).items():
            if key.startswith("_") or key == "training":
                continue
            comparable = _comparable(value)
            if comparable is not _UNCOMPARABLE:
                found[f"{prefix}.{key}" if prefix else key] = comparable
    return found


_UNCOMPARABLE = object()


def _comparable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), value.detach().cpu().double().flatten().tolist())
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_comparable(item) for item in value]
        return _UNCOMPARABLE if any(item is _UNCOMPARABLE for item in items) else tuple(items)
    if isinstance(value, dict):
        items = {str(key): _comparable(item) for key, item in value.items()}
        return _UNCOMPARABLE if any(item is _UNCOMPARABLE for item in items.values()) else items
    return _UNCOMPARABLE


def same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)


def bad_values(spec: HparamSpec) -> list[object]:
    """Values that must be refused for this hyperparameter."""
    if spec.kind is str:
        return ["not-a-choice", 3, None] if spec.choices else [3, None]
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


def another_value(spec: HparamSpec) -> float | int | None:
    """An allowed value of a numeric hyperparameter other than its default: its lowest, else its highest."""
    for candidate in (spec.low, spec.high, spec.default * 2 if spec.default else 1):
        if candidate is None:
            continue
        value = spec.kind(candidate)
        if value == spec.default:
            continue
        too_low = spec.low is not None and (value < spec.low if spec.low_inclusive else value <= spec.low)
        if not too_low and (spec.high is None or value <= spec.high):
            return value
    return None
