"""What every loss head shares: the head contract, hyperparameter declarations and their validation.

A loss head owns its classifier (weights, bias, margins, centres) and any state. The model only
produces features; the head turns them into a training loss and into inference logits:

    total, terms = head(features, labels)   # terms: named scalars for plotting, e.g. {"ce": .., "opl": ..}
    logits = head.logits(features)          # inference logits, never margin-modified
    directions = head.class_directions()    # K x D class weight vectors or centres to draw, or None

Hyperparameters are a frozen dataclass per loss whose fields are declared with :func:`hparam`, so
the UI, the CLI and the validator all read the same names, defaults, ranges and help texts.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn


class HparamError(ValueError):
    """A loss hyperparameter is unknown, of the wrong type or out of its allowed range."""


def hparam(
    default: float | int | str | bool,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """Declare one hyperparameter field: its default, one-line help, and allowed range or choices."""
    meta = {"help": help, "low": low, "high": high, "low_inclusive": low_inclusive, "choices": choices}
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class HparamSpec:
    """One hyperparameter as the UI and CLI describe it."""

    name: str
    default: float | int | str | bool
    kind: type
    help: str
    low: float | None
    high: float | None
    low_inclusive: bool
    choices: tuple[str, ...] | None

    def range_text(self) -> str:
        """Human-readable allowed values, used in error messages and UI help."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.kind is bool:
            return "true or false"
        noun = "an integer" if self.kind is int else "a number"
        if self.low is not None and self.high is not None:
            left = "from" if self.low_inclusive else "above"
            return f"{noun} {left} {self.low:g} to {self.high:g}"
        if self.low is not None:
            return f"{noun} {'>=' if self.low_inclusive else '>'} {self.low:g}"
        return noun


def hparam_specs(params_cls: type) -> list[HparamSpec]:
    """The declared hyperparameters of a loss's Params dataclass, in declaration order."""
    specs = []
    for field in dataclasses.fields(params_cls):
        meta = field.metadata
        specs.append(
            HparamSpec(
                name=field.name,
                default=field.default,
                kind=type(field.default),
                help=meta.get("help", ""),
                low=meta.get("low"),
                high=meta.get("high"),
                low_inclusive=meta.get("low_inclusive", True),
                choices=meta.get("choices"),
            )
        )
    return specs


def _coerce(spec: HparamSpec, value: Any, loss_name: str) -> float | int | str | bool:
    where = f"{loss_name}.{spec.name}"
    if spec.kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.strip().lower() in ("true", "1", "yes")
        raise HparamError(f"{where}: must be true or false, got {value!r}")
    if spec.kind is str:
        if not isinstance(value, str) or (spec.choices and value not in spec.choices):
            raise HparamError(f"{where}: must be {spec.range_text()}, got {value!r}")
        return value
    # numbers: accept numbers and numeric strings (CLI, URL), never bools
    if isinstance(value, bool):
        raise HparamError(f"{where}: must be {spec.range_text()}, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise HparamError(f"{where}: must be {spec.range_text()}, got {value!r}") from None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise HparamError(f"{where}: must be {spec.range_text()}, got {value!r}")
    if spec.kind is int:
        if float(value) != int(value):
            raise HparamError(f"{where}: must be {spec.range_text()}, got {value!r}")
        value = int(value)
    else:
        value = float(value)
    too_low = spec.low is not None and (value < spec.low if spec.low_inclusive else value <= spec.low)
    too_high = spec.high is not None and value > spec.high
    if too_low or too_high:
        raise HparamError(f"{where}: must be {spec.range_text()}, got {value!r}")
    return value


def validate_hparams(loss_name: str, params_cls: type, values: dict[str, Any] | None) -> Any:
    """Build a Params instance from user values, with a message naming the field and range on error."""
    specs = {spec.name: spec for spec in hparam_specs(params_cls)}
    values = dict(values or {})
    unknown = sorted(set(values) - set(specs))
    if unknown:
        allowed = ", ".join(specs) or "none"
        raise HparamError(f"{loss_name}: unknown hyperparameter {', '.join(unknown)} (allowed: {allowed})")
    coerced = {name: _coerce(specs[name], value, loss_name) for name, value in values.items()}
    params = params_cls(**coerced)
    check = getattr(params, "check", None)
    if check is not None:
        check()
    return params


class LossHead(nn.Module):
    """Base of every loss head: subclasses set ``name``, ``summary`` (one line), ``paper`` (citation
    with link), ``Params`` and implement :meth:`forward` and :meth:`logits`. The module docstring
    holds the formula and what to look for in the plots (the app's Learn page shows it).

    Subclasses keep learned tensors as parameters and running state (centres, step counters) as
    buffers, so ``state_dict()`` saves and restores everything with the run.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    paper: ClassVar[str]
    Params: ClassVar[type]

    def __init__(self, feat_dim: int, n_classes: int, params: Any) -> None:
        super().__init__()
        self.feat_dim = feat_dim
        self.n_classes = n_classes
        self.params = params

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Inference logits (no margin), used for accuracy, predictions and Grad-CAM targets."""
        raise NotImplementedError

    def class_directions(self) -> torch.Tensor | None:
        """K x D vectors to draw as class directions (weights or centres), or None."""
        return None

    def plan(self, total_steps: int) -> None:
        """Told the run's planned number of optimiser steps before training (for annealing)."""

    def max_grad_norm(self) -> float | None:
        """The largest gradient norm (model and head together) this loss wants per step, or None for
        no clipping. The trainer clips to it after each backward pass."""
        return None

    @classmethod
    def feasibility_warnings(cls, params: Any, feat_dim: int, n_classes: int) -> list[str]:
        """Plain-language warnings, each a sentence or two without the loss's name (the caller adds it),
        when these settings cannot be met in this feature dimension."""
        return []


class CrossEntropyPlusHead(LossHead):
    """A linear classifier with bias trained by cross-entropy plus ``weight`` times a feature term.

    Subclasses implement :meth:`feature_term`, returning the term's value and its named parts.
    Params must have a ``weight`` field (lambda).
    """

    term_name: ClassVar[str]

    def __init__(self, feat_dim: int, n_classes: int, params: Any) -> None:
        super().__init__(feat_dim, n_classes, params)
        self.classifier = nn.Linear(feat_dim, n_classes)

    def feature_term(
        self, features: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        features = features.float()
        ce = F.cross_entropy(self.classifier(features), labels)
        value, parts = self.feature_term(features, labels)
        total = ce + self.params.weight * value
        return total, {"ce": ce, self.term_name: value, **parts}

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features.float())

    def class_directions(self) -> torch.Tensor:
        return self.classifier.weight.detach()
