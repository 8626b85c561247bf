"""The loss registry: every loss head, built in or a plug-in, is registered by name with :func:`register`,
which also gives it what the app shows about it: a built-in loss's table in ``losses/about.toml``, or the
same fields declared as class attributes by a plug-in (:mod:`losses.plugins`), validated the same way.

A name with a family prefix (``pml:ArcFaceLoss``) is resolved on first use by the family's adapter module
(:data:`FAMILIES`), so an optional library is imported only by the processes that use it."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import importlib
import inspect
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from losses.base import Expected, HparamError, HparamSpec, LossHead, hparam_specs, validate_hparams

ABOUT = Path(__file__).with_name("about.toml")
ABOUT_FIELDS = ("title", "summary", "paper", "formula_latex", "lesson")
DIRECTIONS = ("lower", "higher")
HPARAM_KINDS = (bool, int, float, str)

# prefix -> the module whose import registers that family's losses (``pml:ArcFaceLoss``)
FAMILIES = {"pml": "losses.pml"}
# a plain name, or a family's prefix and a member: letters, digits, "_" and "-"; no ",", ":", "=" or "."
# of its own, since ``--losses`` and ``--hparam`` use those to separate variants and settings
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")

_REGISTRY: dict[str, type[LossHead]] = {}
_SOURCES: dict[str, str] = {}
_source: contextvars.ContextVar[str] = contextvars.ContextVar("losslens_loss_source", default="")


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


@contextlib.contextmanager
def loading(source: str) -> Iterator[None]:
    """Losses registered inside this block come from ``source`` (a plug-in's file path or module name), which
    :func:`source` then reports for them and a run records."""
    token = _source.set(source)
    try:
        yield
    finally:
        _source.reset(token)


def register(cls: type[LossHead]) -> type[LossHead]:
    """Class decorator: add a loss head to the registry under ``cls.name``, with its ``title``, ``summary``,
    ``paper``, ``formula_latex``, ``lesson`` and ``expected`` (its ``expect`` entries). A name with a table in
    ``losses/about.toml`` takes them from there; any other (a plug-in) from its own class (:func:`plugin_about`).
    Registering the same class again changes nothing; another class under a taken name is refused."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _valid_name(name, cls):
        raise ValueError(
            f"{cls.__qualname__}: name must be 1 to 40 letters, digits, '_' or '-' starting with a letter "
            f"(it is how --losses and the app name the loss), got {name!r}"
        )
    taken = _REGISTRY.get(name)
    if taken is cls:
        return cls
    if taken is not None:
        raise ValueError(f"loss {name!r} is registered twice: by {_where(taken)} and by {_where(cls)}")
    _check_params(cls)
    table = about_table().get(name)
    if table is not None:
        about, where = table, ABOUT.name
        missing = [field for field in ABOUT_FIELDS if not isinstance(about.get(field), str) or not about[field].strip()]
        if missing:
            raise ValueError(f"loss {name!r}: {ABOUT.name} has no {', '.join(missing)} for it")
    else:
        about, where = plugin_about(cls), "its class"
    for field in ABOUT_FIELDS:
        setattr(cls, field, about[field])
    cls.expected = tuple(_expected(name, about.get("expect", []), where))
    _REGISTRY[name] = cls
    _SOURCES[name] = _source.get()
    return cls


def plugin_about(cls: type[LossHead]) -> dict[str, Any]:
    """What the app shows about a plug-in loss, from its own class body (never inherited from a built-in loss
    it subclasses): its docstring's first paragraph is the ``summary`` and its ``.. math::`` block the
    ``formula_latex``; ``title`` (default: its name), ``paper``, ``lesson`` (the about text Learn shows) and
    ``expect`` are optional class attributes, and a ``summary`` or ``formula_latex`` attribute overrides the
    docstring's. Raises ValueError saying what to write when the summary or the formula is missing."""
    own = vars(cls)
    summary, formula = docstring_about(own.get("__doc__"))
    about: dict[str, Any] = {
        "title": own.get("title", cls.name),
        "summary": own.get("summary", summary),
        "formula_latex": own.get("formula_latex", formula),
        "paper": own.get("paper", ""),
        "lesson": own.get("lesson", ""),
        "expect": own.get("expect", []),
    }
    wrong = [field for field in ABOUT_FIELDS if not isinstance(about[field], str)]
    if wrong:
        raise ValueError(f"loss {cls.name!r}: {', '.join(wrong)} must be text")
    missing = [field for field in ("title", "summary", "formula_latex") if not about[field].strip()]
    if missing:
        raise ValueError(
            f"loss {cls.name!r}: {cls.__qualname__} has no {' and no '.join(_HOW_TO_DECLARE[f] for f in missing)}"
        )
    # text written over several lines of a class body is one paragraph on screen
    return {key: " ".join(value.split()) if isinstance(value, str) else value for key, value in about.items()}


_HOW_TO_DECLARE = {
    "title": "title (a class attribute, the loss's name as its paper writes it)",
    "summary": "summary: open its docstring with one line saying what the loss does",
    "formula_latex": (
        "formula: write its training loss in its docstring as a LaTeX line after '.. math::' "
        r'(e.g. .. math:: L = \mathrm{CE}(z / T, y)), in a raw docstring: r"""..."""'
    ),
}
_MATH = re.compile(r"^\.\. math::[ \t]*(.*)$")


def docstring_about(doc: str | None) -> tuple[str, str]:
    """A plug-in docstring's summary (its first paragraph on one line) and formula (its ``.. math::`` block,
    the directive's own line and the indented lines under it, joined)."""
    lines = inspect.cleandoc(doc or "").splitlines()
    summary_lines: list[str] = []
    for line in lines:
        if not line.strip() or _MATH.match(line.strip()):
            break
        summary_lines.append(line.strip())
    formula: list[str] = []
    for index, line in enumerate(lines):
        match = _MATH.match(line.strip())
        if match is None:
            continue
        formula.append(match.group(1).strip())
        for following in lines[index + 1 :]:
            if following.strip() and not following[:1].isspace():
                break
            formula.append(following.strip())
        break
    return " ".join(summary_lines), " ".join(part for part in formula if part)


def forget(source: str) -> None:
    """Unregister the losses registered from ``source`` (a plug-in module that failed to load)."""
    for name in [name for name, found in _SOURCES.items() if found == source and source]:
        del _REGISTRY[name], _SOURCES[name]


def _valid_name(name: str, cls: type[LossHead]) -> bool:
    family, colon, member = name.partition(":")
    if not colon:
        return bool(NAME_PATTERN.fullmatch(name))
    return FAMILIES.get(family) == cls.__module__ and bool(NAME_PATTERN.fullmatch(member))


def _where(cls: type[LossHead]) -> str:
    source = _SOURCES.get(cls.name, "") if _REGISTRY.get(cls.name) is cls else _source.get()
    return f"{cls.__module__}.{cls.__qualname__}" + (f" from {source}" if source else "")


def _check_params(cls: type[LossHead]) -> None:
    """A loss's ``Params`` must be a frozen dataclass whose fields are declared with ``hparam()``."""
    params = getattr(cls, "Params", None)
    if not (isinstance(params, type) and dataclasses.is_dataclass(params)):
        raise ValueError(
            f"loss {cls.name!r}: Params must be a dataclass of its hyperparameters, each declared with "
            "losses.hparam(default, help); a loss without any: an empty @dataclasses.dataclass(frozen=True) class"
        )
    for field in dataclasses.fields(params):
        if field.default is dataclasses.MISSING or type(field.default) not in HPARAM_KINDS:
            raise ValueError(
                f"loss {cls.name!r}: hyperparameter {field.name} must be declared with losses.hparam(default, help) "
                f"and a default that is a number, text or true/false; got {field.default!r}"
            )


def _expected(name: str, entries: Any, where: str) -> list[Expected]:
    """The ``expect`` entries of a loss's table (or class), checked: each names a figure, ``lower`` or
    ``higher`` (than softmax) and the lesson's words for it."""
    found = []
    for entry in entries if isinstance(entries, (list, tuple)) else [entries]:
        direction = entry.get("than_softmax", "") if isinstance(entry, dict) else ""
        if direction not in DIRECTIONS or not entry.get("figure") or not entry.get("because"):
            raise ValueError(
                f"loss {name!r}: each expect entry in {where} needs figure, than_softmax "
                f"({' or '.join(DIRECTIONS)}) and because; got {entry!r}"
            )
        found.append(Expected(entry["figure"], direction, entry["because"]))
    return found


def names() -> list[str]:
    """Registered loss names, in registration order."""
    return list(_REGISTRY)


def get(name: str) -> type[LossHead]:
    """The head class registered under ``name``, with a message listing the choices otherwise. A family's
    name (``pml:ArcFaceLoss``) imports the family's adapter first, which says how to install what it needs."""
    found = _REGISTRY.get(name)
    if found is not None:
        return found
    family, colon, _ = name.partition(":") if isinstance(name, str) else ("", "", "")
    if colon and family in FAMILIES:
        importlib.import_module(FAMILIES[family]).require(name)  # raises HparamError saying what is missing
        return _REGISTRY[name]
    prefixes = ", ".join(f"{family}:CLASS" for family in FAMILIES)
    raise HparamError(f"unknown loss {name!r} (choose from: {', '.join(_REGISTRY)}, or {prefixes})") from None


def load_families() -> list[str]:
    """Register every family whose library is installed (``pml:ArcFaceLoss`` ... with pytorch-metric-learning),
    so that lists of losses show them; for each family that is not, the sentence saying how to add it."""
    hints = [importlib.import_module(module).register_available() for module in FAMILIES.values()]
    return [hint for hint in hints if hint]


def source(name: str) -> str:
    """Where a registered loss came from: a plug-in's file path or module name, empty for LossLens's own."""
    get(name)
    return _SOURCES.get(name, "")


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
