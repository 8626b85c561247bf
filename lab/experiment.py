"""An experiment: one run per loss on the same settings, and its name. The CLI, the Train form and the
benchmarks all make theirs with :func:`make_experiment`."""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

import losses
from lab.config import ConfigError, RunConfig


def experiment_name(template: RunConfig, started: float | None = None) -> str:
    """``YYYYmmdd-HHMMSS-<dataset>-<dim>d-<4 hex digits>``: readable, sorted by start time, and unique
    when two experiments start in the same second. It names no user: names end up in links."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    return f"{stamp}-{template.dataset}-{template.feat_dim}d-{secrets.token_hex(2)}"


def make_experiment(
    template: RunConfig, loss_names: Sequence[str], hparams: Mapping[str, Mapping[str, Any]] | None = None
) -> list[RunConfig]:
    """The runs of one experiment: ``template`` once per loss, each validated, with the loss's
    hyperparameters (``hparams[loss]`` over its defaults; text such as ``"0.4"`` is parsed) stored
    typed and complete, so a saved config records every value its run used. The experiment keeps
    ``template.experiment`` when set, else gets a new :func:`experiment_name`.

    Raises :class:`ConfigError` naming the first bad setting.
    """
    if not loss_names:
        raise ConfigError("losses: choose at least one loss")
    repeated = sorted({name for name in loss_names if list(loss_names).count(name) > 1})
    if repeated:
        raise ConfigError(f"losses: {', '.join(repeated)} named more than once; name each loss once")
    hparams = hparams or {}
    name = template.experiment or experiment_name(template)
    configs = []
    for loss in loss_names:
        config = template.replace(loss=loss, loss_params=dict(hparams.get(loss, {})), experiment=name).validate()
        typed = dataclasses.asdict(losses.make_params(loss, config.loss_params))
        configs.append(config.replace(loss_params=typed))
    return configs
