"""What the Train form holds (TrainSettings: run settings not yet validated, the variants, the seeds, where to
train) and what follows from it without a page: the runs it asks for in words, the limits of its settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import losses
from lab.settings.config import GROUPS, RunConfig, settings
from lab.settings.errors import ConfigError
from lab.shown_text import count_text

DEFAULT_LOSSES = ("softmax", "lsoftmax", "amc", "opl", "lmd")
MAX_SEEDS = 10  # seeds per variant from the form: each seed trains every variant again


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """What the form holds: the run settings (not yet validated), the chosen losses and their
    hyperparameters, the variants added beyond them (a loss and its complete hyperparameters), how many
    seeds (``config.seed`` and the ones after it), where to train (``local`` or ``ray``) and the preset
    the form was filled with; ``start`` is True on the rerun where Start was clicked."""

    config: RunConfig
    losses: tuple[str, ...]
    hparams: dict[str, dict[str, Any]]
    start: bool = False
    extra: tuple[tuple[str, dict[str, Any]], ...] = ()
    seeds: int | str = 1  # str: what was typed, when it is not a number
    backend: str = "local"
    preset: str = ""

    @classmethod
    def of(cls, configs: Sequence[RunConfig], preset: str = "") -> TrainSettings:
        """The form's values that started ``configs`` (an experiment's variants x seeds): the first
        seed's runs give the variants, the first variant of each loss its pill."""
        seeds = sorted({c.seed for c in configs})
        first = [c for c in configs if c.seed == seeds[0]]
        pills: dict[str, dict[str, Any]] = {}
        extra = []
        for config in first:
            if config.loss in pills:
                extra.append((config.loss, dict(config.loss_params)))
            else:
                pills[config.loss] = dict(config.loss_params)
        return cls(first[0], tuple(pills), pills, extra=tuple(extra), seeds=len(seeds), preset=preset)

    def entries(self) -> list[tuple[str, dict[str, Any]]]:
        """Every variant as (loss, hyperparameters): the pills in order, then the added variants."""
        return [(loss, self.hparams.get(loss, {})) for loss in self.losses] + [
            (name, dict(params)) for name, params in self.extra
        ]

    def seed_list(self) -> list[int]:
        allowed = f"an integer from 1 to {MAX_SEEDS}"
        seeds = self.seeds
        if isinstance(seeds, str):  # what was typed, when it is not a number
            try:
                seeds = losses.read_number(seeds, int)
            except ValueError as err:
                raise ConfigError(f"seeds: {err} (allowed: {allowed})") from None
        if not 1 <= seeds <= MAX_SEEDS:
            raise ConfigError(f"seeds: must be {allowed}, got {seeds}")
        return list(range(self.config.seed, self.config.seed + seeds))


DEFAULT_SETTINGS = TrainSettings(RunConfig(), DEFAULT_LOSSES, {})


def runs_text(configs: Sequence[RunConfig]) -> str:
    """``3 variants x 2 seeds = 6 runs``."""
    variants = len(dict.fromkeys(c.variant for c in configs))
    seeds = len({c.seed for c in configs})

    return f"{count_text(variants, 'variant')} x {count_text(seeds, 'seed')} = {count_text(len(configs), 'run')}"


def limits_lines(config_cls: type[RunConfig] = RunConfig) -> list[str]:
    """The bounds of the settings the form shows, one line per group."""
    lines = []
    for group in GROUPS:
        items = [
            f"{declared.label[:1].lower()}{declared.label[1:]}: {declared.bounds_text()} {declared.unit}".strip()
            for declared in settings(config_cls)
            if declared.group == group and declared.form and declared.bounds_text()
        ]
        if items:
            lines.append("; ".join(items))
    return lines
