"""The run config: a plain, JSON-serialisable description of one training run, and its validation.

Every limit a user can run into (epochs, batch size, feature dimension, ...) is in :data:`LIMITS`,
so the CLI, the app and the docs show the same numbers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import losses
import models

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "cifar100")
OPTIMIZERS = ("sgd", "adam")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclasses.dataclass(frozen=True)
class Limits:
    """Caps on what one run may ask for; shown in the UI and CLI help."""

    max_epochs: int = 200
    max_batch_size: int = 4096
    max_feat_dim: int = 512
    max_lr: float = 10.0
    max_weight_decay: float = 0.1
    max_snapshot_points: int = 2000
    max_seed: int = 2**31 - 1
    max_train_images: int = 1_000_000


LIMITS = Limits()


# Fields a stored run's config.json must have: without them the run cannot be rebuilt.
STORED_FIELDS = ("dataset", "model", "feat_dim", "loss", "loss_params", "epochs", "seed", "experiment")


class ConfigError(ValueError):
    """A run setting is missing, of the wrong type or out of range; the message names the field."""


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run. Equal configs give equal runs on CPU.

    ``train_limit`` > 0 trains on that many training images (a fixed random subset); 0 uses all.
    ``experiment`` groups the runs trained together; ``snapshot_points`` is the size of the fixed
    test subset whose features are stored every epoch. ``channels_last`` trains in the channels-last
    memory layout (faster convolutions, same results up to rounding; see bench/RESULTS.md).
    """

    dataset: str = "digits"
    data_root: str | None = None
    model: str = "small"
    feat_dim: int = 2
    loss: str = "softmax"
    loss_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    train_limit: int = 0
    epochs: int = 12
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.1
    weight_decay: float = 5e-4
    seed: int = 0
    device: str = "auto"
    snapshot_points: int = 500
    experiment: str = ""
    channels_last: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], required: tuple[str, ...] = ()) -> RunConfig:
        """Build and validate a config from JSON data; unknown or mistyped fields are errors, and so
        are missing ``required`` ones (the others take their defaults)."""
        if not isinstance(data, dict):
            raise ConfigError(f"config: must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"config: unknown field {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        missing = [name for name in required if name not in data]
        if missing:
            raise ConfigError(f"config: missing field {', '.join(missing)}")
        config = cls(**data)
        config.validate()
        return config

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def validate(self) -> RunConfig:
        """Raise :class:`ConfigError` naming the first bad field and its allowed values."""
        _choice("dataset", self.dataset, DATASETS)
        if self.data_root is not None and (not isinstance(self.data_root, str) or not self.data_root.strip()):
            raise ConfigError(f"data_root: must be a folder path or empty, got {self.data_root!r}")
        _choice("model", self.model, tuple(models.names()))
        _integer("feat_dim", self.feat_dim, 2, LIMITS.max_feat_dim)
        _choice("loss", self.loss, tuple(losses.names()))
        if not isinstance(self.loss_params, dict):
            raise ConfigError(f"loss_params: must be a mapping of hyperparameters, got {self.loss_params!r}")
        try:
            losses.make_params(self.loss, self.loss_params)
        except losses.HparamError as err:
            raise ConfigError(str(err)) from None
        _integer("train_limit", self.train_limit, 0, LIMITS.max_train_images)
        _integer("epochs", self.epochs, 1, LIMITS.max_epochs)
        _integer("batch_size", self.batch_size, 2, LIMITS.max_batch_size)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _number("lr", self.lr, 0.0, LIMITS.max_lr, low_inclusive=False)
        _number("weight_decay", self.weight_decay, 0.0, LIMITS.max_weight_decay)
        _integer("seed", self.seed, 0, LIMITS.max_seed)
        _choice("device", self.device, DEVICES)
        _integer("snapshot_points", self.snapshot_points, 10, LIMITS.max_snapshot_points)
        if not isinstance(self.experiment, str):
            raise ConfigError(f"experiment: must be text, got {self.experiment!r}")
        if not isinstance(self.channels_last, bool):
            raise ConfigError(f"channels_last: must be true or false, got {self.channels_last!r}")
        return self


def one_config_per_loss(
    template: RunConfig, loss_names: Sequence[str], hparams: Mapping[str, Mapping[str, Any]]
) -> list[RunConfig]:
    """The runs of one experiment: ``template`` once per loss, each validated, with the loss's
    hyperparameters (``hparams[loss]`` over its defaults; text such as ``"0.4"`` is parsed) stored
    typed and complete, so a saved config records every value its run used.

    Raises :class:`ConfigError` naming the first bad setting.
    """
    if not loss_names:
        raise ConfigError("losses: choose at least one loss")
    repeated = sorted({name for name in loss_names if list(loss_names).count(name) > 1})
    if repeated:
        raise ConfigError(f"losses: {', '.join(repeated)} named more than once; name each loss once")
    configs = []
    for loss in loss_names:
        config = template.replace(loss=loss, loss_params=dict(hparams.get(loss, {}))).validate()
        typed = dataclasses.asdict(losses.make_params(loss, config.loss_params))
        configs.append(config.replace(loss_params=typed))
    return configs


def _choice(field: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{field}: must be one of {', '.join(choices)}, got {value!r}")


def _integer(field: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{field}: must be an integer from {low} to {high}, got {value!r}")


def _number(field: str, value: Any, low: float, high: float, *, low_inclusive: bool = True) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= low if low_inclusive else value > low) and value <= high
    if not ok:
        bound = f"from {low:g}" if low_inclusive else f"above {low:g}"
        raise ConfigError(f"{field}: must be a number {bound} to {high:g}, got {value!r}")
