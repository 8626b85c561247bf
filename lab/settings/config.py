"""The run config: a plain, JSON-serializable description of one training run, declared once.

Each :class:`RunConfig` field is declared with :func:`setting`: its default, one-line help, bounds or
choices, unit, the Train form group it belongs to and its command-line flag. Validation, the CLI's
flags (``lab.cli.main``), the Train form's widgets and its limits text (``ui.train_form``) and the stored
``config.json`` all read these declarations, so a new run option is one field here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import losses
import models
from lab import datasets
from lab.settings.device import available_devices
from lab.settings.errors import ConfigError
from losses import plugins

OPTIMIZERS = ("sgd", "adam")
DEVICES = ("auto", "cpu", "cuda", "mps")

# The Train form's groups, in the order it draws them; a setting names one of these.
GROUPS = ("data", "model", "training", "advanced")

# Fields a stored run's config.json must have: without them the run cannot be rebuilt.
STORED_FIELDS = ("dataset", "model", "feat_dim", "loss", "loss_params", "epochs", "seed", "experiment")

_META_KEY = "setting"


@dataclasses.dataclass(frozen=True)
class Setting:
    """One run setting as validation, the CLI and the Train form describe it.

    ``choices`` may be a callable (registries: models, losses, datasets) so it is read when used.
    ``offered`` narrows what the form offers (devices this machine has) without narrowing what a
    stored config may hold. ``labels`` and ``describe`` turn a choice into its menu label and a line
    of help. ``form`` is False to keep a setting off the form, or a callable of the values chosen
    so far that says whether to show it. ``flag`` is the CLI flag, None for none. ``zero_or_at_least``
    allows 0 (a setting's "off" or "all") below a least useful value.
    """

    name: str
    kind: type
    default: Any
    help: str
    label: str
    group: str
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    choices: tuple[Any, ...] | Callable[[], Sequence[Any]] | None = None
    offered: Callable[[], Sequence[Any]] | None = None
    labels: Callable[[Any], str] | None = None
    describe: Callable[[Any], str] | None = None
    unit: str = ""
    flag: str | None = None
    form: bool | Callable[[Mapping[str, Any]], bool] = True
    optional: bool = False
    path: bool = False
    presets: Mapping[Any, str] | None = None
    zero_or_at_least: float | None = None

    def allowed(self) -> tuple[Any, ...] | None:
        """The valid choices now, or None for a free value."""
        if self.choices is None:
            return None
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def form_choices(self) -> tuple[Any, ...] | None:
        """The choices the form offers: ``offered`` when declared, else every valid choice."""
        return tuple(self.offered()) if self.offered is not None else self.allowed()

    def label_of(self, value: Any) -> str:
        return self.labels(value) if self.labels is not None else str(value)

    def shown(self, values: Mapping[str, Any]) -> bool:
        """Whether the form shows this setting, given the values chosen so far."""
        return self.form(values) if callable(self.form) else self.form

    def bounds_text(self) -> str:
        """The bounds alone, e.g. ``1 to 200`` or ``above 0, at most 10``; empty when unbounded."""
        low, high = _format(self.low, self.kind), _format(self.high, self.kind)
        if self.zero_or_at_least is not None and self.high is not None:
            return f"0 or {_format(self.zero_or_at_least, self.kind)} to {high}"
        if self.low is not None and self.high is not None:
            return f"{low} to {high}" if self.low_inclusive else f"above {low}, at most {high}"
        if self.low is not None:
            return f"{'>=' if self.low_inclusive else '>'} {low}"
        if self.high is not None:
            return f"<= {high}"
        return ""

    def range_text(self) -> str:
        """What a valid value is, as error messages and help texts say it."""
        allowed = self.allowed()
        if allowed is not None:
            return "one of " + ", ".join(str(choice) for choice in allowed)
        if self.kind is bool:
            return "true or false"
        if self.kind is dict:
            return "a mapping"
        if self.kind is str:
            noun = "a folder path" if self.path else "text"
            return f"{noun} or empty" if self.optional else noun
        noun = "an integer" if self.kind is int else "a number"
        low, high = _format(self.low, self.kind), _format(self.high, self.kind)
        gap = "" if self.zero_or_at_least is None else f": 0 or at least {_format(self.zero_or_at_least, self.kind)}"
        if self.low is not None and self.high is not None:
            return f"{noun} {'from' if self.low_inclusive else 'above'} {low} to {high}{gap}"
        bounds = self.bounds_text()
        return f"{noun} {bounds}{gap}" if bounds else noun

    def read(self, text: str) -> Any:
        """A value typed as text (a command-line flag): a number setting's number as a person writes it
        (:func:`losses.read_number`), else the text, which :meth:`check` then names with what to type."""
        if self.kind not in (int, float) or self.allowed() is not None:
            return text
        try:
            return losses.read_number(text, self.kind)
        except ValueError:
            return text

    def check(self, value: Any) -> None:
        """Raise :class:`ConfigError` naming this setting and its allowed values if ``value`` is not one; text
        where a number belongs (a form's input the form could not read) says what was typed and what to type."""
        if isinstance(value, str) and self.kind in (int, float) and self.allowed() is None:
            try:
                losses.read_number(value, self.kind)
            except ValueError as err:
                raise ConfigError(f"{self.name}: {err} (allowed: {self.range_text()})") from None
        if not self._valid(value):
            raise ConfigError(f"{self.name}: must be {self.range_text()}, got {value!r}")

    def _valid(self, value: Any) -> bool:
        if value is None:
            return self.optional
        allowed = self.allowed()
        if allowed is not None:
            return value in allowed
        if self.kind is bool:
            return isinstance(value, bool)
        if self.kind is dict:
            return isinstance(value, dict)
        if self.kind is str:
            return isinstance(value, str) and (not self.path or bool(value.strip()))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low if self.low_inclusive else value <= self.low):
            return False
        if self.zero_or_at_least is not None and 0 < value < self.zero_or_at_least:
            return False
        return self.high is None or value <= self.high


def _format(bound: float | None, kind: type) -> str:
    if bound is None:
        return ""
    return str(int(bound)) if kind is int else f"{bound:g}"


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    label: str = "",
    group: str = "advanced",
    kind: type | None = None,
    default_factory: Callable[[], Any] | None = None,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    choices: tuple[Any, ...] | Callable[[], Sequence[Any]] | None = None,
    offered: Callable[[], Sequence[Any]] | None = None,
    labels: Callable[[Any], str] | None = None,
    describe: Callable[[Any], str] | None = None,
    unit: str = "",
    flag: str | None = "",
    form: bool | Callable[[Mapping[str, Any]], bool] = True,
    path: bool = False,
    presets: Mapping[Any, str] | None = None,
    zero_or_at_least: float | None = None,
) -> Any:
    """Declare one run setting (a :class:`RunConfig` field); see :class:`Setting` for the arguments.

    ``kind`` defaults to the default's type; a None default makes the setting optional and needs
    ``kind``. ``label`` defaults to the capitalized name; ``flag`` to ``--name-with-dashes``, or
    ``--no-name`` for a setting that is on by default; None keeps it off the command line.
    """
    value = default_factory() if default_factory is not None else default
    if group not in GROUPS:
        raise ValueError(f"setting group must be one of {', '.join(GROUPS)}, got {group!r}")
    meta = {
        "kind": kind or type(value),
        "help": help,
        "label": label,
        "group": group,
        "low": low,
        "high": high,
        "low_inclusive": low_inclusive,
        "choices": choices,
        "offered": offered,
        "labels": labels,
        "describe": describe,
        "unit": unit,
        "flag": flag,
        "form": form,
        "optional": value is None,
        "path": path,
        "presets": presets,
        "zero_or_at_least": zero_or_at_least,
    }
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata={_META_KEY: meta})
    return dataclasses.field(default=default, metadata={_META_KEY: meta})


def check_loss(loss: str, module: str = "") -> None:
    """Raise :class:`ConfigError` unless ``loss`` is a loss this process has (built in, loaded from a plug-in
    module, or a family member such as ``pml:ArcFaceLoss`` whose library is installed). A run whose plug-in
    ``module`` is not loaded gets a message naming the module and how to load it: a run's files never make
    this process import anything."""
    try:
        losses.get(loss)
    except losses.HparamError as err:
        if module:
            raise ConfigError(f"loss: {plugins.missing_message(loss, module)}") from None
        if ":" in loss:
            raise ConfigError(f"loss: {err}") from None
        families = ", ".join(f"{family}:CLASS" for family in losses.registry.FAMILIES)
        raise ConfigError(f"loss: must be one of {', '.join(losses.names())} or {families}, got {loss!r}") from None


def settings(config_cls: type | None = None) -> tuple[Setting, ...]:
    """The declared settings of ``config_cls`` (:class:`RunConfig` by default), in declaration order."""
    return _settings_of(config_cls or RunConfig)


@functools.cache
def _settings_of(config_cls: type) -> tuple[Setting, ...]:
    found = []
    for field in dataclasses.fields(config_cls):
        meta = dict(field.metadata[_META_KEY])
        default = field.default_factory() if field.default is dataclasses.MISSING else field.default
        meta["label"] = meta["label"] or field.name.replace("_", " ").capitalize()
        if meta["flag"] == "":
            dashed = field.name.replace("_", "-")
            meta["flag"] = f"--no-{dashed}" if default is True else f"--{dashed}"
        found.append(Setting(name=field.name, default=default, **meta))
    return tuple(found)


def _dataset_label(name: str) -> str:
    entry = datasets.info(name)
    if entry.offline:
        return f"{entry.label} (bundled)"
    return f"{entry.label} ({'local copy' if entry.local_copy(None) else 'needs a download'})"


def _needs_files(values: Mapping[str, Any]) -> bool:
    return not datasets.info(values["dataset"]).offline


def _usable_devices() -> list[str]:
    return ["auto", *available_devices()]


def _model_summary(name: str) -> str:
    return next(m.summary for m in models.available() if m.name == name)


_OPTIMIZER_LABELS = {"sgd": "SGD (Nesterov)", "adam": "AdamW"}


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run. Equal configs give equal runs on CPU."""

    dataset: str = setting(
        "digits",
        "the images to train and test on",
        group="data",
        choices=datasets.names,
        labels=_dataset_label,
        describe=lambda name: datasets.info(name).source,
    )
    data_root: str | None = setting(
        None,
        "a folder holding a local copy of the dataset; empty: the app's data folder (and Debian's package "
        "folder for Fashion-MNIST), else a download",
        label="Local data folder (optional)",
        group="data",
        kind=str,
        path=True,
        form=_needs_files,
    )
    model: str = setting(
        "small",
        "the CNN that turns an image into the feature the losses act on",
        group="model",
        choices=models.names,
        describe=_model_summary,
    )
    feat_dim: int = setting(
        2,
        "the width of the feature layer the losses act on; 2-D and 3-D are drawn as they are, higher "
        "dimensions through UMAP and PCA",
        label="Feature dimension",
        group="model",
        low=2,
        high=512,
        presets={2: "2-D", 3: "3-D"},
    )
    loss: str = setting(
        "softmax", "the loss this run trains with (checked by check_loss)", kind=str, flag=None, form=False
    )
    loss_params: dict[str, Any] = setting(
        help="the loss's hyperparameters, every one stored", default_factory=dict, flag=None, form=False
    )
    loss_module: str = setting(
        "",
        "where a plug-in loss came from (its file, folder or module), so that a process without it can say what "
        "to load; empty for LossLens's own losses and pytorch-metric-learning's",
        flag=None,
        form=False,
    )
    train_limit: int = setting(
        0,
        "train on a fixed random subset of this many images, to keep big datasets quick; 0 trains on all, and "
        "a subset needs at least 2 images (batch normalization needs two images per step)",
        label="Training images (0 = all)",
        group="data",
        low=0,
        high=1_000_000,
        zero_or_at_least=2,
        unit="images",
    )
    epochs: int = setting(12, "passes over the training images", group="training", low=1, high=200)
    batch_size: int = setting(64, "images per optimizer step", group="training", low=2, high=4096, unit="images")
    optimizer: str = setting(
        "sgd",
        "SGD with Nesterov momentum, or AdamW",
        label="Optimiser",
        group="training",
        choices=OPTIMIZERS,
        labels=_OPTIMIZER_LABELS.get,
    )
    lr: float = setting(
        0.1,
        "peak learning rate of the one-cycle schedule",
        label="Learning rate (peak)",
        group="training",
        low=0.0,
        high=10.0,
        low_inclusive=False,
    )
    weight_decay: float = setting(5e-4, "weight decay of the optimizer", low=0.0, high=0.1)
    seed: int = setting(0, "seeds the subset, the weights and the batch order", group="training", low=0, high=2**31 - 1)
    device: str = setting(
        "auto",
        "where to train; auto takes CUDA, then Apple MPS, then the CPU",
        group="training",
        choices=DEVICES,
        offered=_usable_devices,
    )
    snapshot_points: int = setting(
        500,
        "size of the fixed test subset whose features are stored every epoch (the epoch slider)",
        label="Feature snapshots",
        low=10,
        high=2000,
        unit="test images per epoch",
    )
    eval_images: int = setting(
        2000,
        "size of the fixed test subset whose accuracy is measured after every epoch (it holds the feature "
        "snapshots' images, so a smaller number measures those); the whole test set is measured once, at the "
        "end; 0 measures the whole test set every epoch",
        label="Test images per epoch (0 = all)",
        low=0,
        high=1_000_000,
        unit="test images",
    )
    experiment: str = setting(
        "",
        "name of the runs trained together; empty: the start time, dataset and feature dimension and a random suffix",
        form=False,
    )
    variant: str = setting(
        "",
        "the run's variant within its experiment: the loss's name and the settings that set it apart "
        "(e.g. L-Softmax m=4); empty in runs made before variants",
        flag=None,
        form=False,
    )
    channels_last: bool = setting(
        True,
        "train in the channels-last memory layout: faster convolutions, same results up to rounding "
        "(bench/RESULTS.md compares them)",
        label="Channels-last memory layout",
    )

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
        for declared in settings(type(self)):
            declared.check(getattr(self, declared.name))
        check_loss(self.loss, self.loss_module)
        # the one check that spans two fields: the hyperparameters must fit the chosen loss
        try:
            losses.make_params(self.loss, self.loss_params)
        except losses.HparamError as err:
            raise ConfigError(str(err)) from None
        return self
