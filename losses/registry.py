"""The loss registry: every loss head registers itself by name with :func:`register`, which also gives
it what the app shows about it from ``losses/about.toml``."""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from pathlib import Path
from typing import Any

from losses.base import Expected, HparamError, HparamSpec, LossHead, hparam_specs, validate_hparams

ABOUT = Path(__file__).with_name("about.toml")
ABOUT_FIELDS = ("title", "summary", "paper", "formula_latex", "lesson")
DIRECTIONS = ("lower", "higher")

_REGISTRY: dict[str, type[LossHead]] = {}


@functools.cache
def about_table() -> dict[str, dict[str, str]]:
    """``losses/about.toml``: per loss name, the text the app shows about it (see :data:`ABOUT_FIELDS`)."""
    with ABOUT.open("rb") as file:
        return tomllib.load(file)


@dataclasses.dataclass(frozen=True)
class LossInfo:
    """What the UI and CLI show about a registered loss."""

    name: str
    summary: str
    defaults: dict[str, Any]
    hparams: list[HparamSpec]


def register(cls: type[LossHead]) -> type[LossHead]:
    """Class decorator: add a loss head to the registry under ``cls.name``, with its ``title``,
    ``summary``, ``paper``, ``formula_latex``, ``lesson`` and ``expected`` (its ``expect`` entries) from
    its table in ``losses/about.toml``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"loss {cls.name!r} is registered twice")
    about = about_table().get(cls.name, {})
    missing = [field for field in ABOUT_FIELDS if not str(about.get(field, "")).strip()]
    if missing:
        raise ValueError(f"loss {cls.name!r}: {ABOUT.name} has no {', '.join(missing)} for it")
    for field in ABOUT_FIELDS:
        setattr(cls, field, about[field])
    cls.expected = tuple(_expected(cls.name, about.get("expect", [])))
    _REGISTRY[cls.name] = cls
    return cls


def _expected(name: str, entries: list[dict[str, str]]) -> list[Expected]:
    """The ``expect`` entries of a loss's table, checked: each names a figure, ``lower`` or ``higher``
    (than softmax) and the lesson's words for it."""
    found = []
    for entry in entries:
        direction = entry.get("than_softmax", "")
        if direction not in DIRECTIONS or not entry.get("figure") or not entry.get("because"):
            raise ValueError(
                f"loss {name!r}: each expect entry in {ABOUT.name} needs figure, than_softmax "
                f"({' or '.join(DIRECTIONS)}) and because; got {entry!r}"
            )
        found.append(Expected(entry["figure"], direction, entry["because"]))
    return found


def names() -> list[str]:
    """Registered loss names, in registration order."""
    return list(_REGISTRY)


def get(name: str) -> type[LossHead]:
    """The head class registered under ``name``, with a message listing the choices otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise HparamError(f"unknown loss {name!r} (choose from: {', '.join(_REGISTRY)})") from None


def info(name: str) -> LossInfo:
    cls = get(name)
    specs = hparam_specs(cls.Params)
    return LossInfo(cls.name, cls.summary, {s.name: s.default for s in specs}, specs)


def available() -> list[LossInfo]:
    """Every registered loss with its one-line summary and default hyperparameters."""
    return [info(name) for name in _REGISTRY]


def make_params(name: str, hparams: dict[str, Any] | None = None) -> Any:
    """Validated Params for a loss; raises :class:`HparamError` naming the field and its range."""
    cls = get(name)
    return validate_hparams(name, cls.Params, hparams)


def build(name: str, feat_dim: int, n_classes: int, **hparams: Any) -> LossHead:
    """A fresh loss head for ``feat_dim``-dimensional features and ``n_classes`` classes."""
    return get(name)(feat_dim, n_classes, make_params(name, hparams))


def warnings_for(name: str, feat_dim: int, n_classes: int, hparams: dict[str, Any] | None = None) -> list[str]:
    """Warnings when this loss's settings cannot be met with this feature dimension and class count."""
    return get(name).feasibility_warnings(make_params(name, hparams), feat_dim, n_classes)
