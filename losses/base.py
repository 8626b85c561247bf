"""What every loss head shares: the head contract, hyperparameter declarations and their validation.

A loss head owns its classifier (weights, bias, margins, centers) and any state. The model only
produces features; the head turns them into a training loss and into inference logits:

    head.plan(total_steps)                  # once, before training: the run's optimizer steps
    total, terms = head(features, labels)   # terms: named scalars for plotting, e.g. {"ce": .., "opl": ..}
    logits = head.logits(features)          # inference logits, never margin-modified
    directions = head.class_directions()    # K x D class weight vectors or centers to draw, or None

**One training-mode forward is one optimizer step.** Heads with running state (step counters of
schedules, the centers of center loss and LMD) advance it in every forward made in training mode,
so call the head once per optimizer step in training mode, and in eval mode for anything else
(evaluation, probing, plotting). An eval-mode forward never changes the state. Keeping the update
in the forward, where the batch's features already are, keeps the contract one call per step.

Features are cast to the dtype of the head's parameters, so a float64 head computes in float64
and a float32 head in float32 whatever it is fed (half-precision features are promoted).

Hyperparameters are a frozen dataclass per loss whose fields are declared with :func:`hparam`, so
the UI, the CLI and the validator all read the same names, defaults, ranges and help texts.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

UNPLANNED_STEPS = 1000
NORM_FLOOR_SHARE = 0.1
NORM_EPS = 1e-12

Terms = tuple[Tensor, dict[str, Tensor]]  # a head's loss and its named parts


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
    return list(_declared_specs(params_cls))


@functools.cache  # read for every variant each time the Train form is drawn; a class's fields never change
def _declared_specs(params_cls: type) -> tuple[HparamSpec, ...]:
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
    return tuple(specs)


# digits 0-9 (re.ASCII: no other script's digits), one optional point, an optional exponent; no "_" or "inf"
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
LARGEST_INTEGER = 10**18  # beyond any count a setting takes, and int64's range


def read_number(text: str, kind: type = float) -> int | float:
    """A number as a person types it (a form's text input, a command-line value): ``12``, ``-0.5``, ``1e-3``;
    an integer setting (``kind`` int) also takes ``1e3`` and ``12.0``. Python's own parsing reads more than a
    person means (``0_1`` is 1, Arabic-Indic and full-width digits are digits, ``1e309`` is infinity), so
    anything else raises ValueError with a sentence saying what was typed and what to type instead."""
    typed = text.strip()
    example = "12" if kind is int else "0.1"
    if not typed:
        raise ValueError(f"nothing was typed: type a number such as {example}")
    if any(char.isdigit() and not char.isascii() for char in typed):
        raise ValueError(f"{typed!r} has digits other than 0-9: type it with the digits 0-9, e.g. {example}")
    if not _NUMBER_TEXT.fullmatch(typed):
        raise ValueError(
            f"{typed!r} is not a number: type the digits 0-9 with at most one point and an exponent, "
            f"e.g. {example}" + ("" if kind is int else " or 1e-3")
        )
    exact = Decimal(typed)
    if kind is int:
        if exact != exact.to_integral_value():
            raise ValueError(f"{typed!r} is not a whole number: type an integer such as {example}")
        if abs(exact) > LARGEST_INTEGER:
            raise ValueError(f"{typed!r} is too large: type an integer such as {example}")
        return int(exact)
    value = float(exact)
    if not math.isfinite(value):
        raise ValueError(f"{typed!r} is too large to compute with: type a number such as {example}")
    if value == 0 and exact != 0:
        raise ValueError(f"{typed!r} is too small to compute with (it would be 0): type a number such as {example}")
    return value


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
            value = read_number(value, spec.kind)
        except ValueError as err:
            raise HparamError(f"{where}: {err} (allowed: {spec.range_text()})") from None
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


def with_defaults(params_cls: type, name: str, **defaults: Any) -> type:
    """A frozen subclass of the Params dataclass ``params_cls`` named ``name`` whose fields keep their
    declarations (help, range) but take new ``defaults``: for losses that share settings and differ only
    in their values."""
    unknown = set(defaults) - {field.name for field in dataclasses.fields(params_cls)}
    if unknown:
        raise TypeError(f"{params_cls.__name__} has no field {', '.join(sorted(unknown))}")
    fields = [
        (field.name, field.type, dataclasses.field(default=defaults[field.name], metadata=field.metadata))
        for field in dataclasses.fields(params_cls)
        if field.name in defaults
    ]
    doc = f"{params_cls.__name__} with the defaults " + ", ".join(f"{k} = {v!r}" for k, v in defaults.items())
    derived = dataclasses.make_dataclass(name, fields, bases=(params_cls,), frozen=True, namespace={"__doc__": doc})
    derived.__module__ = params_cls.__module__
    return derived


def normalize(features: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length, with a floor on the length that keeps gradients bounded.

    The gradient of f / |f| grows as 1 / |f|: about 1e11 for a feature of length 1e-11, enough for
    one sample near the origin (common with 2-D heads) to decide a whole step. Rows shorter than
    ``NORM_FLOOR_SHARE`` (a tenth) of the batch's mean row length are divided by that floor instead,
    so they come out shorter than 1 and their gradient is at most ten times that of a row of mean
    length. Rows above the floor, and so every test against the papers' formulas, are unchanged; a
    zero row stays zero (cosine 0 with everything), as with ``F.normalize``.
    """
    lengths = torch.linalg.vector_norm(features, dim=1, keepdim=True)
    floor = (NORM_FLOOR_SHARE * lengths.mean()).detach().clamp(min=NORM_EPS)
    return features / lengths.clamp(min=floor)


class Expected(NamedTuple):
    """A figure the loss's lesson promises to move against softmax on the same data and seeds: its name
    (one of the experiment summary's figures), ``lower`` or ``higher``, and the lesson's words for it."""

    figure: str
    direction: str
    because: str


class LossHead(nn.Module):
    """Base of every loss head. Subclasses declare ``name`` (the registry key), ``Params`` (the
    hyperparameter dataclass), ``bias`` (whether the classifier has a bias) and ``scheduled``
    (whether the head keeps a step counter for a schedule), and implement :meth:`forward` (and
    :meth:`logits` when it is not the plain classifier).

    What the app shows about a loss is text for students, kept in ``losses/about.toml`` and attached
    by ``losses.registry.register``: ``title`` (the loss's name as its paper writes it, e.g.
    "L-Softmax"), ``summary`` (one line for menus), ``paper`` (citation with link),
    ``formula_latex`` (the training loss as LaTeX), ``lesson`` (a few plain sentences on what the
    loss asks of the features and what to look for in the plots) and ``expected``: what the lesson
    promises as measurable figures against softmax, which the app checks on each experiment instead of
    taking the lesson's word for it. The module docstring is for developers.

    The head owns a ``classifier`` (``Linear`` from the features to the classes). Learned tensors are
    parameters and running state (centers, step counters) buffers, so ``state_dict()`` saves and
    restores everything with the run. ``renamed_state`` maps buffer names of older runs to the
    current ones and ``added_state`` lists buffers older runs lack, so that their files still load.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    summary: ClassVar[str]
    paper: ClassVar[str]
    formula_latex: ClassVar[str]
    lesson: ClassVar[str]
    expected: ClassVar[tuple[Expected, ...]] = ()
    Params: ClassVar[type]
    bias: ClassVar[bool] = True
    scheduled: ClassVar[bool] = False
    renamed_state: ClassVar[Mapping[str, str]] = {}
    added_state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, feat_dim: int, n_classes: int, params: Any) -> None:
        super().__init__()
        self.feat_dim = feat_dim
        self.n_classes = n_classes
        self.params = params
        self.classifier = nn.Linear(feat_dim, n_classes, bias=self.bias)
        if self.scheduled:
            self.register_buffer("step", torch.zeros((), dtype=torch.long))
            self.register_buffer("planned_steps", torch.tensor(UNPLANNED_STEPS, dtype=torch.long))
        self.register_load_state_dict_pre_hook(LossHead._upgrade_state)

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def cast(self, features: torch.Tensor) -> torch.Tensor:
        """``features`` in the dtype of the head's parameters."""
        return features.to(self.classifier.weight.dtype)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Inference logits (no margin), used for accuracy, predictions and Grad-CAM targets."""
        return self.classifier(self.cast(features))

    def class_directions(self) -> torch.Tensor | None:
        """K x D vectors to draw as class directions (weights or centers), or None."""
        return self.classifier.weight.detach()

    def plan(self, total_steps: int) -> None:
        """Told the run's planned number of optimizer steps T before training; schedules are
        expressed against it. A scheduled head used without ``plan`` assumes ``UNPLANNED_STEPS``."""
        if self.scheduled:
            self.planned_steps.fill_(max(int(total_steps), 1))

    def advance(self) -> float:
        """Count this forward as an optimizer step when training (t is incremented before use, so the
        first batch has t = 1) and return the progress t / T."""
        if self.training:
            self.step += 1
        return max(int(self.step), 1) / int(self.planned_steps)

    def max_grad_norm(self) -> float | None:
        """The largest gradient norm (model and head together) this loss wants per step, or None for
        no clipping. The trainer clips to it after each backward pass."""
        return None

    @classmethod
    def feasibility_warnings(cls, params: Any, feat_dim: int, n_classes: int) -> list[str]:
        """Plain-language warnings, each a sentence or two without the loss's name (the caller adds it),
        when these settings cannot be met in this feature dimension."""
        return []

    @staticmethod
    def _upgrade_state(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
        for old, new in module.renamed_state.items():
            if prefix + old in state_dict and prefix + new not in state_dict:
                state_dict[prefix + new] = state_dict.pop(prefix + old)
        for name in module.added_state:
            state_dict.setdefault(prefix + name, getattr(module, name))


class CrossEntropyPlusHead(LossHead):
    """A linear classifier with bias trained by cross-entropy plus ``weight`` times a feature term.

    Subclasses implement :meth:`feature_term`, returning the term's value and its named parts, and
    may override :meth:`term_weight` for a schedule. Params must have a ``weight`` field (lambda).
    """

    def feature_term(self, features: Tensor, labels: Tensor, logits: Tensor) -> Terms:
        """The term added to cross-entropy (reported under the loss's ``name``) and its named parts, from
        the features, the labels and the classifier's logits."""
        raise NotImplementedError

    def term_weight(self) -> float:
        """lambda for this training step."""
        return self.params.weight

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        features = self.cast(features)
        logits = self.classifier(features)
        ce = F.cross_entropy(logits, labels)
        value, parts = self.feature_term(features, labels, logits)
        total = ce + self.term_weight() * value
        return total, {"ce": ce, self.name: value, **parts}
