"""An experiment: variants x seeds on the same settings, and its name. The CLI, the Train form, the
presets and the benchmarks all make theirs with :func:`make_experiment`.

A **variant** is a loss with its own settings and a readable label: ``lsoftmax:margin=4`` is
"L-Softmax m=4". The same loss may appear several times with different settings. Each run stores its
variant's label (``RunConfig.variant``) and its seed, so runs group back into variants for the summary
(:mod:`lab.analysis.seed_stats`) and the Compare page.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

import losses
from lab.settings.config import RunConfig, check_loss
from lab.settings.errors import ConfigError

# "m: the target angle is ..." -> "m": a hyperparameter's help may open with the paper's symbol
_SYMBOL = re.compile(r"^(\w{1,8}): ")


def _symbols(loss: str) -> dict[str, str]:
    """Each hyperparameter's name in labels: the paper's symbol its help opens with ("m", "lambda") when
    no other hyperparameter of the loss uses it, else the name."""
    found = {spec.name: match.group(1) for spec in losses.info(loss).hparams if (match := _SYMBOL.match(spec.help))}
    taken = list(found.values())
    return {name: symbol for name, symbol in found.items() if taken.count(symbol) == 1}


def setting_symbol(loss: str, name: str) -> str:
    """How labels and axes name a hyperparameter: its paper's symbol ("m", "lambda") or its name."""
    return _symbols(loss).get(name, name)


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def loss_title(loss: str) -> str:
    """The loss's name as its paper writes it ("L-Softmax"), else its registry name."""
    return getattr(losses.get(loss), "title", "") or loss


@dataclasses.dataclass(frozen=True)
class Variant:
    """A loss with its own hyperparameters (text such as ``"0.4"`` or typed values; the rest are the
    experiment's ``hparams`` for the loss, then the loss's defaults). ``label`` names it on screen;
    empty: :meth:`default_label`."""

    loss: str
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    label: str = ""

    @classmethod
    def parse(cls, spec: str) -> Variant:
        """``NAME`` or ``NAME:key=value:key=value``, as ``--losses`` takes it; a family's NAME is two words
        (``pml:ArcFaceLoss:margin=20``)."""
        name, *pairs = [part.strip() for part in spec.strip().split(":")]
        if name in losses.registry.FAMILIES and pairs and "=" not in pairs[0]:  # pml:ArcFaceLoss:margin=20
            name = f"{name}:{pairs.pop(0)}"
        settings: dict[str, str] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise ConfigError(
                    f"losses: {spec.strip()!r}: write a variant as NAME or NAME:key=value:key=value, "
                    "e.g. lsoftmax:margin=4"
                )
            if key.strip() in settings:
                raise ConfigError(f"losses: {spec.strip()!r} sets {key.strip()} twice")
            settings[key.strip()] = value.strip()
        if not name:
            raise ConfigError(f"losses: {spec.strip()!r}: a variant starts with a loss name, e.g. lsoftmax:margin=4")
        return cls(name, settings)

    @property
    def spec(self) -> str:
        """The variant as ``--losses`` writes it."""
        return ":".join([self.loss, *(f"{key}={_format_value(value)}" for key, value in self.settings.items())])

    def default_label(self) -> str:
        """The loss's title and the variant's own settings, typed: ``L-Softmax m=4``, ``Center loss
        lambda=0.001``. Raises :class:`ConfigError` for a setting the loss does not take."""
        typed = _typed(self.loss, self.settings)
        symbols = _symbols(self.loss)
        own = [f"{symbols.get(key, key)}={_format_value(typed[key])}" for key in self.settings]
        return " ".join([loss_title(self.loss), *own])

    def display_label(self) -> str:
        return self.label or self.default_label()


def _typed(loss: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """A loss's complete, typed hyperparameters with ``settings`` over its defaults."""
    check_loss(loss)
    try:
        return dataclasses.asdict(losses.make_params(loss, dict(settings)))
    except losses.HparamError as err:
        raise ConfigError(str(err)) from None


def factor_variants(
    entries: Sequence[tuple[str, Mapping[str, Any]]],
) -> tuple[list[Variant], dict[str, dict[str, Any]]]:
    """Variants given with their loss's complete hyperparameters (the Train form's), as
    :func:`make_experiment` takes them: the values every variant of a loss shares become that loss's
    ``hparams``, and each variant keeps only the settings that set it apart from the other variants of its
    loss, so its label names exactly those ("L-Softmax m=4"; a loss's only variant is its title, as with
    ``--hparam``). Raises :class:`ConfigError` for a bad value."""
    typed = [(loss, _typed(loss, settings)) for loss, settings in entries]
    by_loss: dict[str, list[dict[str, Any]]] = {}
    for loss, params in typed:
        by_loss.setdefault(loss, []).append(params)
    shared: dict[str, dict[str, Any]] = {}
    for loss, group in by_loss.items():
        shared[loss] = {key: value for key, value in group[0].items() if all(p[key] == value for p in group)}
    variants = [
        Variant(loss, {key: value for key, value in params.items() if key not in shared[loss]})
        for loss, params in typed
    ]
    return variants, shared


def parse_variants(text: str) -> list[Variant]:
    """``"softmax,lsoftmax:margin=2,lsoftmax:margin=4"`` to its variants, in order."""
    return [Variant.parse(spec) for spec in text.split(",") if spec.strip()]


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` to ``[0, 1, 2]``."""
    seeds = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            seeds.append(losses.read_number(part, int))
        except ValueError as err:
            raise ConfigError(f"seeds: {err}; write them as 0,1,2") from None
    return seeds


def variant_label(config: RunConfig) -> str:
    """The label of a stored run's variant; a run made before variants were stored is its loss's title."""
    return config.variant or loss_title(config.loss)


def experiment_name(template: RunConfig, started: float | None = None, preset: str = "") -> str:
    """``YYYYmmdd-HHMMSS-[<preset>-]<dataset>-<dim>d-<4 hex digits>``: readable, sorted by start time, and
    unique when two experiments start in the same second. It names no user: names end up in links."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    middle = f"{preset}-" if preset else ""
    return f"{stamp}-{middle}{template.dataset}-{template.feat_dim}d-{secrets.token_hex(2)}"


def make_experiment(
    template: RunConfig,
    variants: Sequence[str | Variant],
    hparams: Mapping[str, Mapping[str, Any]] | None = None,
    seeds: Sequence[int] | None = None,
    max_runs: int | None = None,
) -> list[RunConfig]:
    """The runs of one experiment: every variant with every seed, seed by seed (so a stopped sweep has
    whole seeds to compare), each validated.

    A variant is a :class:`Variant` or its text (``"amc"``, ``"lsoftmax:margin=4"``). Its
    hyperparameters are its own settings over ``hparams[loss]`` (shared by every variant of the loss)
    over the loss's defaults, stored typed and complete, so a saved config records every value its run
    used. ``seeds`` default to ``[template.seed]``. The experiment keeps ``template.experiment`` when
    set, else gets a new :func:`experiment_name`. With ``max_runs``, more runs than that are refused before
    any is built (:data:`lab.training.jobs.MAX_RUNS_PER_JOB` is the app's).

    Raises :class:`ConfigError` naming the first bad setting.
    """
    chosen = [Variant.parse(v) if isinstance(v, str) else v for v in variants]
    if not chosen:
        raise ConfigError("losses: choose at least one loss")
    seeds = [template.seed] if seeds is None else list(seeds)
    if not seeds:
        raise ConfigError("seeds: choose at least one seed")
    repeated_seeds = sorted(seed for seed, count in collections.Counter(seeds).items() if count > 1)
    if repeated_seeds:
        raise ConfigError(f"seeds: {', '.join(map(str, repeated_seeds))} named more than once")
    if max_runs is not None and len(chosen) * len(seeds) > max_runs:
        raise ConfigError(
            f"losses and seeds: {len(chosen):,} variants x {len(seeds):,} seeds make {len(chosen) * len(seeds):,} "
            f"runs; at most {max_runs:,} may train together: choose fewer variants or seeds"
        )
    hparams = hparams or {}
    name = template.experiment or experiment_name(template)
    labels: list[str] = []
    typed: list[tuple[str, dict[str, Any]]] = []  # (loss, complete hyperparameters) per variant
    seen: set[tuple[str, str]] = set()  # the same as keys, and the labels: a repeat is found without
    seen_labels: set[str] = set()  # comparing every pair of variants
    for variant in chosen:
        params = _typed(variant.loss, {**hparams.get(variant.loss, {}), **variant.settings})
        key = (variant.loss, repr(sorted(params.items())))
        if key in seen:
            raise ConfigError(
                f"losses: {variant.loss} named more than once with the same settings; give each variant of a loss "
                "its own settings, e.g. lsoftmax:margin=2,lsoftmax:margin=4"
            )
        label = variant.display_label()
        if label in seen_labels:
            raise ConfigError(f"losses: two variants are labelled {label!r}; give each its own label")
        seen.add(key)
        seen_labels.add(label)
        typed.append((variant.loss, params))
        labels.append(label)
    configs = []
    for seed in seeds:
        for (loss, params), label in zip(typed, labels, strict=True):
            config = template.replace(
                loss=loss,
                loss_params=params,
                loss_module=losses.source(loss),
                experiment=name,
                variant=label,
                seed=seed,
            )
            configs.append(config.validate())
    return configs
