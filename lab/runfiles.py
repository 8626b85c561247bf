"""The files of a run folder and the tensors inside them, declared once.

The trainer writes through these types (``RunWriter``), and everything that reads a run (the app, the
exports, the benchmarks) gets them back from ``RunStore``, so a tensor key or a file name is spelled
in this module only. ``from_tensors`` checks what it reads: a tensor that is missing, of the wrong
type or of a shape that does not fit the others is a :class:`RunStoreError` naming the run and file.

Run folders written before epoch 0 and the stored images existed still load: their snapshots start
at epoch 1 and carry no class directions or accuracies, and their features no images.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

CONFIG = "config.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
WEIGHTS = "weights.safetensors"
FEATURES = "features.safetensors"
SNAPSHOTS = "snapshots.safetensors"

# Every file a run may hold, in the order a listing shows them, with what it is.
FILES: dict[str, str] = {
    CONFIG: "the run's settings (dataset, model, loss and its hyperparameters, optimiser, seed)",
    STATUS: "how the run ended (finished, stopped, diverged, ...), its test accuracy and timings",
    METRICS: "one JSON object per epoch: losses, accuracies, learning rate, speed",
    WEIGHTS: "the trained model (keys model.*) and loss head (keys head.*), parameters and buffers",
    FEATURES: (
        "final test features, labels and inference logits; the snapshot subset's indices, penultimate "
        "activations and raw uint8 images; class_directions (classifier weights or centres) where the loss "
        "has them"
    ),
    SNAPSHOTS: (
        "the snapshot subset's features after every epoch from epoch 0 (before training), with the class "
        "directions and test accuracy of each epoch"
    ),
}

# The most bytes a reader takes from each file. Run folders arrive from other people (an unzipped export,
# a shared runs folder), so a file's size is checked before it is read. The safetensors caps hold the
# largest run the declared bounds allow: 201 snapshots of 2000 images x 512 dimensions is 0.8 GB.
MiB = 1 << 20
MAX_BYTES: dict[str, int] = {
    CONFIG: 1 * MiB,
    STATUS: 1 * MiB,
    METRICS: 16 * MiB,
    WEIGHTS: 512 * MiB,
    FEATURES: 512 * MiB,
    SNAPSHOTS: 1024 * MiB,
}
MAX_NUMBER_CHARS = 40  # json.dumps writes any float in at most 24 characters and an int64 in 20

# status.json's fields and their types; fields of another type are reported and dropped when read.
STATUS_TEXT = ("status", "message", "owner", "host", "traceback")
STATUS_NUMBERS = ("started", "updated", "finished", "test_acc", "train_seconds", "images_per_second")
STATUS_COUNTS = ("pid", "epoch")
# metrics.jsonl: the numbers each epoch's line may hold ("epoch" is a count from 1, "terms" a mapping).
METRIC_NUMBERS = ("train_loss", "train_acc", "test_acc", "lr", "seconds", "images_per_second")

WEIGHTS_FORMAT = "losslens-weights-1"
FEATURES_FORMAT = "losslens-features-1"
SNAPSHOTS_FORMAT = "losslens-snapshots-2"  # 1: epochs 1..E only, no directions or accuracies
MODEL_PREFIX = "model."
HEAD_PREFIX = "head."


class RunStoreError(ValueError):
    """A run is missing, unreadable or its id is not a plain name."""


def size_text(n_bytes: int) -> str:
    return f"{n_bytes / MiB:.0f} MB" if n_bytes >= MiB else f"{n_bytes} bytes"


def _bounded(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if len(text) > MAX_NUMBER_CHARS:
            raise ValueError(f"holds a number {len(text)} characters long (at most {MAX_NUMBER_CHARS})")
        return kind(text)

    return parse


def parse_json(data: bytes) -> Any:
    """JSON from an untrusted run file: numbers longer than :data:`MAX_NUMBER_CHARS` characters and nesting
    deeper than Python's recursion limit are a ValueError, not a stalled or crashed reader."""
    try:
        return json.loads(data.decode("utf-8"), parse_int=_bounded(int), parse_float=_bounded(float))
    except RecursionError:
        raise ValueError("is nested too deeply") from None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_status(raw: Any) -> tuple[dict[str, Any], list[str]]:
    """status.json's object with every known field of its declared type, and what was wrong: a field of
    another type is dropped (so readers fall back to their defaults) and named in the problems."""
    if not isinstance(raw, dict):
        return {}, [f"{STATUS} must hold a JSON object, it holds {type(raw).__name__}"]
    status, problems = dict(raw), []
    for key in (*STATUS_TEXT, *STATUS_NUMBERS, *STATUS_COUNTS):
        if key not in status:
            continue
        value = status[key]
        if key in STATUS_TEXT:
            valid = isinstance(value, str)
        elif key in STATUS_NUMBERS:
            valid = _number(value) and math.isfinite(value)
        else:
            valid = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        if valid:
            status[key] = float(value) if key in STATUS_NUMBERS else value
        else:
            del status[key]
            wanted = "text" if key in STATUS_TEXT else "a number" if key in STATUS_NUMBERS else "a count"
            problems.append(f"{STATUS}: {key} must be {wanted}, it is {_kind_of(value)}")
    return status, problems


def check_metrics(lines: list[Any]) -> tuple[list[dict[str, Any]], str | None]:
    """metrics.jsonl's epochs up to the first malformed line, and what is wrong with that line (None: all good)."""
    for number, line in enumerate(lines, start=1):
        problem = _metric_problem(line)
        if problem:
            return lines[: number - 1], f"line {number}: {problem}"
    return lines, None


def _metric_problem(line: Any) -> str | None:
    if not isinstance(line, dict):
        return f"must be a JSON object, it is {_kind_of(line)}"
    epoch = line.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        return f"epoch must be a count from 1, it is {_kind_of(epoch)}"
    for key in METRIC_NUMBERS:
        if key in line and not _number(line[key]):
            return f"{key} must be a number, it is {_kind_of(line[key])}"
    terms = line.get("terms", {})
    if not isinstance(terms, dict) or not all(_number(value) for value in terms.values()):
        return "terms must map names to numbers"
    return None


def _kind_of(value: Any) -> str:
    """What a JSON value is, without quoting it (file contents never reach a message)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if _number(value):
        return "a number out of range" if isinstance(value, float) and not math.isfinite(value) else "a number"
    return {str: "text", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def weights_to_tensors(model: torch.nn.Module, head: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's and the head's state (parameters and buffers) under their prefixes."""
    tensors = {f"{MODEL_PREFIX}{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"{HEAD_PREFIX}{k}": v for k, v in head.state_dict().items()})
    return tensors


def split_weights(tensors: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(model_state, head_state)`` of a weights file's tensors."""
    model = {k.removeprefix(MODEL_PREFIX): v for k, v in tensors.items() if k.startswith(MODEL_PREFIX)}
    head = {k.removeprefix(HEAD_PREFIX): v for k, v in tensors.items() if k.startswith(HEAD_PREFIX)}
    return model, head


class _Check:
    """Collects what is wrong with one file's tensors and raises it as one RunStoreError."""

    def __init__(self, run_id: str, filename: str) -> None:
        self.where = f"run {run_id}: {filename}" if run_id else filename

    def fail(self, problem: str) -> None:
        raise RunStoreError(f"{self.where}: {problem}")

    def tensor(self, tensors: Mapping[str, torch.Tensor], key: str, required: bool = True) -> torch.Tensor | None:
        value = tensors.get(key)
        if value is None and required:
            self.fail(f"has no {key!r} tensor")
        return value

    def shape(self, name: str, value: torch.Tensor, ndim: int, **sizes: int) -> None:
        """``value`` has ``ndim`` dimensions; ``sizes`` maps ``dim<i>`` to its expected length."""
        if value.ndim != ndim:
            self.fail(f"{name} should have {ndim} dimensions, it has shape {tuple(value.shape)}")
        for dim, expected in sizes.items():
            actual = value.shape[int(dim.removeprefix("dim"))]
            if actual != expected:
                self.fail(f"{name} has shape {tuple(value.shape)}: dimension {dim[3:]} should be {expected}")

    def integer(self, name: str, value: torch.Tensor) -> None:
        if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            self.fail(f"{name} should hold integers, it holds {value.dtype}")

    def indices(self, name: str, value: torch.Tensor, size: int) -> None:
        self.shape(name, value, 1)
        self.integer(name, value)
        if len(value) and (int(value.min()) < 0 or int(value.max()) >= size):
            self.fail(f"{name} must lie in 0..{size - 1}, found {int(value.min())}..{int(value.max())}")
        if len(value.unique()) != len(value):
            self.fail(f"{name} repeats an index")


class _TensorFile:
    """A safetensors file of a run as a dataclass with one field per tensor."""

    def validate(self, run_id: str = "") -> None:
        """Raise :class:`RunStoreError` unless every tensor fits the others."""
        raise NotImplementedError

    def to_tensors(self, run_id: str = "") -> dict[str, torch.Tensor]:
        """The file's tensors (optional ones only when present), checked first."""
        self.validate(run_id)
        tensors = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        return {k: v for k, v in tensors.items() if v is not None}


@dataclasses.dataclass(frozen=True, eq=False)
class RunFeatures(_TensorFile):
    """``features.safetensors``: the trained model on the test set.

    N test images, D feature dimensions, K classes; S images in the fixed snapshot subset, P penultimate
    activations. ``class_directions`` is None for a loss without class vectors; ``snapshot_images`` is None
    for a run written before runs stored their images.
    """

    test_features: torch.Tensor  # N x D float
    test_labels: torch.Tensor  # N, int64
    test_logits: torch.Tensor  # N x K float, inference logits (never margin-modified)
    snapshot_indices: torch.Tensor  # S, int64 test-set indices
    penultimate: torch.Tensor  # S x P float
    class_directions: torch.Tensor | None = None  # K x D float
    snapshot_images: torch.Tensor | None = None  # S x C x H x W uint8, the raw test images of the subset

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor], run_id: str = "") -> RunFeatures:
        check = _Check(run_id, FEATURES)
        required = ("test_features", "test_labels", "test_logits", "snapshot_indices", "penultimate")
        values = {key: check.tensor(tensors, key) for key in required}
        features = cls(
            **values,
            class_directions=check.tensor(tensors, "class_directions", required=False),
            snapshot_images=check.tensor(tensors, "snapshot_images", required=False),
        )
        features.validate(run_id)
        return features

    def validate(self, run_id: str = "") -> None:
        """Raise :class:`RunStoreError` unless every tensor fits the others."""
        check = _Check(run_id, FEATURES)
        check.shape("test_features", self.test_features, 2)
        n, dim = self.test_features.shape
        check.shape("test_labels", self.test_labels, 1, dim0=n)
        check.integer("test_labels", self.test_labels)
        check.shape("test_logits", self.test_logits, 2, dim0=n)
        n_classes = self.test_logits.shape[1]
        if n and (int(self.test_labels.min()) < 0 or int(self.test_labels.max()) >= n_classes):
            check.fail(f"test_labels must be classes 0..{n_classes - 1} (test_logits has {n_classes} columns)")
        check.indices("snapshot_indices", self.snapshot_indices, n)
        subset = len(self.snapshot_indices)
        check.shape("penultimate", self.penultimate, 2, dim0=subset)
        if self.class_directions is not None:
            check.shape("class_directions", self.class_directions, 2, dim0=n_classes, dim1=dim)
        if self.snapshot_images is not None:
            check.shape("snapshot_images", self.snapshot_images, 4, dim0=subset)
            if self.snapshot_images.dtype != torch.uint8:
                check.fail(f"snapshot_images should be uint8, they are {self.snapshot_images.dtype}")


@dataclasses.dataclass(frozen=True, eq=False)
class RunSnapshots(_TensorFile):
    """``snapshots.safetensors``: the snapshot subset after each stored epoch (E of them).

    ``epochs`` numbers the rows: 0 (before training), 1, ... up to the last epoch trained; runs written
    before epoch 0 was stored start at 1 and have no ``class_directions`` or ``test_acc``. ``test_acc`` is
    the test-set accuracy after each epoch (the ``test_acc`` of metrics.jsonl); for epoch 0, the untrained
    model, it is measured on the snapshot subset only, which spares a whole test-set pass before training.
    """

    indices: torch.Tensor  # S, int64 test-set indices (the same as RunFeatures.snapshot_indices)
    features: torch.Tensor  # E x S x D float
    epochs: torch.Tensor  # E, int64, increasing
    class_directions: torch.Tensor | None = None  # E x K x D float
    test_acc: torch.Tensor | None = None  # E float

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor], run_id: str = "") -> RunSnapshots:
        check = _Check(run_id, SNAPSHOTS)
        indices, features = check.tensor(tensors, "indices"), check.tensor(tensors, "features")
        epochs = tensors.get("epochs")
        if epochs is None:  # format 1: one row per epoch from epoch 1
            epochs = torch.arange(1, features.shape[0] + 1) if features.ndim else torch.empty(0, dtype=torch.long)
        snapshots = cls(
            indices,
            features,
            epochs,
            class_directions=tensors.get("class_directions"),
            test_acc=tensors.get("test_acc"),
        )
        snapshots.validate(run_id)
        return snapshots

    def validate(self, run_id: str = "") -> None:
        check = _Check(run_id, SNAPSHOTS)
        check.shape("indices", self.indices, 1)
        check.integer("indices", self.indices)
        check.shape("features", self.features, 3, dim1=len(self.indices))
        rows = self.features.shape[0]
        check.shape("epochs", self.epochs, 1, dim0=rows)
        check.integer("epochs", self.epochs)
        if rows and (int(self.epochs[0]) < 0 or not bool((self.epochs.diff() > 0).all())):
            check.fail(f"epochs must increase from 0 or more, found {self.epochs.tolist()}")
        if self.class_directions is not None:
            check.shape("class_directions", self.class_directions, 3, dim0=rows, dim2=self.features.shape[2])
        if self.test_acc is not None:
            check.shape("test_acc", self.test_acc, 1, dim0=rows)

    def check_subset(self, features: RunFeatures, run_id: str = "") -> None:
        """Raise unless these snapshots are of the same test images as ``features``'s subset."""
        if not torch.equal(self.indices.long(), features.snapshot_indices.long()):
            _Check(run_id, SNAPSHOTS).fail(f"indices are not the snapshot_indices of {FEATURES}")

    @property
    def last_epoch(self) -> int:
        return int(self.epochs[-1]) if len(self.epochs) else 0

    def row(self, epoch: int) -> int:
        """The row of ``epoch``; a KeyError when it was not stored."""
        matches = (self.epochs == epoch).nonzero()
        if not len(matches):
            raise KeyError(f"epoch {epoch} is not among the stored epochs {self.epochs.tolist()}")
        return int(matches[0, 0])
