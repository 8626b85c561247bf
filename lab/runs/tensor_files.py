"""The safetensors files of a run (weights, features, snapshots) and the tensors inside them.

The trainer writes through these types (``RunWriter``), and everything that reads a run (the app, the
exports, the benchmarks) gets them back from ``RunStore``, so a tensor key is spelled in this module only.
``from_tensors`` checks what it reads: a tensor that is missing, of the wrong type or of a shape that does
not fit the others is a :class:`RunStoreError` naming the run and file.

A safetensors file is checked twice. Its header (names, types and shapes, :func:`parse_header`) is checked
against the other tensors and against what the run's config says (:class:`RunLimits`: the feature width, the
dataset's classes, image size and channels, the model's penultimate width and weights, at most one snapshot
per epoch and the one before training) before any tensor is read, so a planted file cannot make a reader
allocate more than the run's settings need; then the values (labels, indices, finite numbers). Half-precision
floats are read as float32 and integer indices as int64, so every reader gets the types it computes with.

Run folders written before epoch 0 and the stored images existed still load: their snapshots start
at epoch 1 and carry no class directions or accuracies, and their features no images.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from lab.runs.contents import FEATURES, HEAD_PREFIX, MODEL_PREFIX, SNAPSHOTS, WEIGHTS, RunStoreError
from lab.runs.safetensors_header import TensorInfo

FINITE_CHUNK = 1 << 20  # values checked for NaN at once (numpy's test, faster than torch's)


@dataclasses.dataclass(frozen=True)
class RunLimits:
    """What a run's config says its files hold: the feature width, the dataset's classes, image size and
    channels, the snapshot subset's largest size, the epochs, and the model's penultimate width and weights
    (names, shapes and types of the model's and head's state)."""

    dataset: str
    model: str
    loss: str
    epochs: int
    feat_dim: int
    n_classes: int
    channels: int
    image_size: int
    snapshot_points: int
    penultimate: int
    weights: Mapping[str, TensorInfo]

    @classmethod
    def of(cls, config: Any) -> RunLimits:
        """The limits of a validated :class:`lab.settings.config.RunConfig`."""
        params = json.dumps(config.loss_params, sort_keys=True)
        shape = _model_shape(config.dataset, config.model, config.feat_dim, config.loss, params)
        return cls(
            dataset=config.dataset,
            model=config.model,
            loss=config.loss,
            epochs=config.epochs,
            feat_dim=config.feat_dim,
            snapshot_points=config.snapshot_points,
            **shape,
        )


@functools.lru_cache(maxsize=256)
def _model_shape(dataset: str, model: str, feat_dim: int, loss: str, params: str) -> dict[str, Any]:
    """The dataset's facts and the shapes of a model and head built on the meta device (no memory, no
    initialisation cost): what a run of these settings stores."""
    import losses
    import models
    from lab import datasets

    info = datasets.info(dataset)
    with torch.device("meta"):
        net = models.build(model, info.channels, info.image_size, feat_dim)
        head = losses.build(loss, feat_dim, info.n_classes, **json.loads(params))
    weights = {name: TensorInfo.of(value) for name, value in weights_to_tensors(net, head).items()}
    return {
        "n_classes": info.n_classes,
        "channels": info.channels,
        "image_size": info.image_size,
        "penultimate": net.feature[0].in_features,
        "weights": weights,
    }


def check_weights(infos: Mapping[str, TensorInfo], run_id: str = "", limits: RunLimits | None = None) -> None:
    """Raise :class:`RunStoreError` unless a weights file's tensors are exactly the state of the model and
    head its config builds: the same names, shapes and kinds of number."""
    if limits is None:
        return
    check = _Check(run_id, WEIGHTS)
    expected = limits.weights
    whose = f"the {limits.model} model and {limits.loss} head of its config"
    unknown = [name for name in infos if name not in expected]
    if unknown:
        check.fail(f"holds {_names(unknown)}, which {whose} do not have")
    missing = [name for name in expected if name not in infos]
    if missing:
        check.fail(f"has no {_names(missing)}, which {whose} have")
    for name, info in infos.items():
        want = expected[name]
        if info.shape != want.shape:
            check.fail(f"{name} has shape {info.shape}: {whose} give it shape {want.shape}")
        if info.dtype.is_floating_point != want.dtype.is_floating_point:
            kind = "floating-point numbers" if want.dtype.is_floating_point else "integers"
            check.fail(f"{name} should hold {kind}, it holds {info.dtype}")


def check_weight_values(tensors: Mapping[str, torch.Tensor], run_id: str = "") -> None:
    """Raise :class:`RunStoreError` when a floating-point weight holds NaN or an infinity."""
    check = _Check(run_id, WEIGHTS)
    for name, value in tensors.items():
        check.finite(name, value)


def _names(names: list[str]) -> str:
    shown = ", ".join(repr(name[:80]) for name in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def usable(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in a type every reader computes with: floats as float32, integers as int64 (the uint8
    stored images and booleans stay)."""
    if tensor.is_floating_point():
        return tensor if tensor.dtype == torch.float32 else tensor.float()
    if tensor.dtype in (torch.int8, torch.int16, torch.int32):
        return tensor.long()
    return tensor


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
    """Collects what is wrong with one file's tensors and raises it as one RunStoreError. Shape and type
    checks take a tensor or a :class:`TensorInfo` (a header's entry), so a file is checked before it is read."""

    def __init__(self, run_id: str, filename: str) -> None:
        self.where = f"run {run_id}: {filename}" if run_id else filename

    def fail(self, problem: str) -> None:
        raise RunStoreError(f"{self.where}: {problem}")

    def tensor(self, tensors: Mapping[str, Any], key: str, required: bool = True) -> Any:
        value = tensors.get(key)
        if value is None and required:
            self.fail(f"has no {key!r} tensor")
        return value

    def shape(self, name: str, value: Any, ndim: int, **sizes: int) -> None:
        """``value`` has ``ndim`` dimensions; ``sizes`` maps ``dim<i>`` to its expected length."""
        if value.ndim != ndim:
            self.fail(f"{name} should have {ndim} dimensions, it has shape {tuple(value.shape)}")
        for dim, expected in sizes.items():
            actual = value.shape[int(dim.removeprefix("dim"))]
            if actual != expected:
                self.fail(f"{name} has shape {tuple(value.shape)}: dimension {dim[3:]} should be {expected}")

    def matches(self, name: str, value: Any, dim: int, expected: int, why: str) -> None:
        """Dimension ``dim`` of ``value`` is ``expected``, which the run's config gives (``why`` says how)."""
        if value.shape[dim] != expected:
            self.fail(f"{name} has shape {tuple(value.shape)}: dimension {dim} should be {expected}, {why}")

    def integer(self, name: str, value: Any) -> None:
        if value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool:
            self.fail(f"{name} should hold integers, it holds {value.dtype}")

    def floating(self, name: str, value: Any) -> None:
        if not value.dtype.is_floating_point:
            self.fail(f"{name} should hold floating-point numbers, it holds {value.dtype}")

    def finite(self, name: str, value: torch.Tensor | None) -> None:
        if value is None or not value.is_floating_point():
            return
        if value.dtype not in (torch.float32, torch.float64):
            value = value.float()
        flat = value.reshape(-1).numpy()
        for start in range(0, flat.size, FINITE_CHUNK):  # a mask of a chunk at a time, not of the whole tensor
            if not np.isfinite(flat[start : start + FINITE_CHUNK]).all():
                self.fail(f"{name} holds NaN or infinite values")

    def indices(self, name: str, value: torch.Tensor, size: int) -> None:
        if len(value) and (int(value.min()) < 0 or int(value.max()) >= size):
            self.fail(f"{name} must lie in 0..{size - 1}, found {int(value.min())}..{int(value.max())}")
        if len(value.unique()) != len(value):
            self.fail(f"{name} repeats an index")


def _infos(tensors: Mapping[str, torch.Tensor | None]) -> dict[str, TensorInfo]:
    return {name: TensorInfo.of(value) for name, value in tensors.items() if value is not None}


class _TensorFile:
    """A safetensors file of a run as a dataclass with one field per tensor."""

    @classmethod
    def check_layout(cls, infos: Mapping[str, TensorInfo], run_id: str = "", limits: RunLimits | None = None) -> None:
        """Raise :class:`RunStoreError` unless the tensors' shapes and types (from a file's header, before it
        is read) fit each other and, with ``limits``, the run's config."""
        raise NotImplementedError

    def check_values(self, run_id: str = "", limits: RunLimits | None = None) -> None:
        """Raise :class:`RunStoreError` unless the values are usable (what the shapes cannot tell)."""
        raise NotImplementedError

    def validate(self, run_id: str = "", limits: RunLimits | None = None) -> None:
        """Raise :class:`RunStoreError` unless every tensor fits the others (and ``limits``, when given)."""
        self.check_layout(
            _infos({field.name: getattr(self, field.name) for field in dataclasses.fields(self)}), run_id, limits
        )
        self.check_values(run_id, limits)

    def to_tensors(self, run_id: str = "", limits: RunLimits | None = None) -> dict[str, torch.Tensor]:
        """The file's tensors (optional ones only when present), checked first."""
        self.validate(run_id, limits)
        tensors = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        return {k: v for k, v in tensors.items() if v is not None}

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The tensors a file of this kind may hold (the others in a file are never read)."""
        return tuple(field.name for field in dataclasses.fields(cls))


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
    def from_tensors(
        cls, tensors: Mapping[str, torch.Tensor], run_id: str = "", limits: RunLimits | None = None
    ) -> RunFeatures:
        """The features in ``tensors`` (a file's), checked, with floats as float32 and indices as int64."""
        cls.check_layout(_infos(tensors), run_id, limits)
        features = cls(**{name: usable(tensors[name]) for name in cls.names() if tensors.get(name) is not None})
        features.check_values(run_id, limits)
        return features

    @classmethod
    def check_layout(cls, infos: Mapping[str, TensorInfo], run_id: str = "", limits: RunLimits | None = None) -> None:
        check = _Check(run_id, FEATURES)
        required = ("test_features", "test_labels", "test_logits", "snapshot_indices", "penultimate")
        features, labels, logits, indices, penultimate = (check.tensor(infos, key) for key in required)
        directions, images = infos.get("class_directions"), infos.get("snapshot_images")
        check.shape("test_features", features, 2)
        check.floating("test_features", features)
        n, dim = features.shape
        check.shape("test_labels", labels, 1, dim0=n)
        check.integer("test_labels", labels)
        check.shape("test_logits", logits, 2, dim0=n)
        check.floating("test_logits", logits)
        n_classes = logits.shape[1]
        check.shape("snapshot_indices", indices, 1)
        check.integer("snapshot_indices", indices)
        subset = indices.shape[0]
        check.shape("penultimate", penultimate, 2, dim0=subset)
        check.floating("penultimate", penultimate)
        if directions is not None:
            check.shape("class_directions", directions, 2, dim0=n_classes, dim1=dim)
            check.floating("class_directions", directions)
        if images is not None:
            check.shape("snapshot_images", images, 4, dim0=subset)
            if images.dtype != torch.uint8:
                check.fail(f"snapshot_images should be uint8, they are {images.dtype}")
        if limits is None:
            return
        check.matches("test_features", features, 1, limits.feat_dim, "the run's feature dimension")
        check.matches("test_logits", logits, 1, limits.n_classes, f"the classes of {limits.dataset}")
        if subset > min(n, limits.snapshot_points):
            check.fail(
                f"snapshot_indices holds {subset} indices, more than the run's snapshot_points "
                f"({limits.snapshot_points}) and test images ({n})"
            )
        check.matches("penultimate", penultimate, 1, limits.penultimate, f"the {limits.model} model's width there")
        if images is not None:
            where = f"as {limits.dataset}'s images are"
            check.matches("snapshot_images", images, 1, limits.channels, f"the channels of {limits.dataset}")
            check.matches("snapshot_images", images, 2, limits.image_size, where)
            check.matches("snapshot_images", images, 3, limits.image_size, where)

    def check_values(self, run_id: str = "", limits: RunLimits | None = None) -> None:
        check = _Check(run_id, FEATURES)
        n, n_classes = self.test_logits.shape
        if n and (int(self.test_labels.min()) < 0 or int(self.test_labels.max()) >= n_classes):
            check.fail(f"test_labels must be classes 0..{n_classes - 1} (test_logits has {n_classes} columns)")
        check.indices("snapshot_indices", self.snapshot_indices, n)
        for name in ("test_features", "test_logits", "penultimate", "class_directions"):
            check.finite(name, getattr(self, name))


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
    def from_tensors(
        cls, tensors: Mapping[str, torch.Tensor], run_id: str = "", limits: RunLimits | None = None
    ) -> RunSnapshots:
        """The snapshots in ``tensors`` (a file's), checked, with floats as float32 and epochs as int64."""
        infos = _infos(tensors)
        cls.check_layout(infos, run_id, limits)
        values = {name: usable(tensors[name]) for name in cls.names() if tensors.get(name) is not None}
        if "epochs" not in values:  # format 1: one row per epoch from epoch 1
            values["epochs"] = torch.arange(1, infos["features"].shape[0] + 1)
        snapshots = cls(**values)
        snapshots.check_values(run_id, limits)
        return snapshots

    @classmethod
    def check_layout(cls, infos: Mapping[str, TensorInfo], run_id: str = "", limits: RunLimits | None = None) -> None:
        check = _Check(run_id, SNAPSHOTS)
        indices, features = check.tensor(infos, "indices"), check.tensor(infos, "features")
        check.shape("indices", indices, 1)
        check.integer("indices", indices)
        check.shape("features", features, 3, dim1=indices.shape[0])
        check.floating("features", features)
        rows, dim = features.shape[0], features.shape[2]
        if not rows:
            check.fail("features holds no epochs: a snapshots file holds one row per stored epoch")
        epochs = infos.get("epochs")
        if epochs is not None:
            check.shape("epochs", epochs, 1, dim0=rows)
            check.integer("epochs", epochs)
        directions = infos.get("class_directions")
        if directions is not None:
            check.shape("class_directions", directions, 3, dim0=rows, dim2=dim)
            check.floating("class_directions", directions)
        accuracy = infos.get("test_acc")
        if accuracy is not None:
            check.shape("test_acc", accuracy, 1, dim0=rows)
            check.floating("test_acc", accuracy)
        if limits is None:
            return
        if rows > limits.epochs + 1:
            check.fail(
                f"features holds {rows} epochs, more than the run's {limits.epochs} epochs and the one before training"
            )
        check.matches("features", features, 2, limits.feat_dim, "the run's feature dimension")
        if indices.shape[0] > limits.snapshot_points:
            check.fail(
                f"indices holds {indices.shape[0]} indices, more than the run's snapshot_points "
                f"({limits.snapshot_points})"
            )
        if directions is not None:
            check.matches("class_directions", directions, 1, limits.n_classes, f"the classes of {limits.dataset}")

    def check_values(self, run_id: str = "", limits: RunLimits | None = None) -> None:
        check = _Check(run_id, SNAPSHOTS)
        if len(self.epochs) and (int(self.epochs[0]) < 0 or not bool((self.epochs.diff() > 0).all())):
            check.fail(f"epochs must increase from 0 or more, found {_few(self.epochs)}")
        if limits is not None and len(self.epochs) and int(self.epochs[-1]) > limits.epochs:
            check.fail(f"epochs must lie in 0..{limits.epochs} (the run's epochs), found {_few(self.epochs)}")
        for name in ("features", "class_directions", "test_acc"):
            check.finite(name, getattr(self, name))

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


def _few(values: torch.Tensor, shown: int = 8) -> str:
    """A tensor's first values as a list, shortened: a planted file's values never fill a message."""
    head = values[:shown].tolist()
    return f"{head}" if len(values) <= shown else f"{str(head)[:-1]}, ... ({len(values)} in all)]"
