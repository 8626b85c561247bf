"""Cached loading and analysis of runs for the pages; nothing here draws.

Every loader takes the run's record unhashed (``_record``) with :func:`cache_key`, the run folder and the
time of its last status change, as what Streamlit hashes: a run that changes gets new entries, and no
loader rebuilds a record from disk. Run files are read with ``st.cache_data``; trained models are kept
with ``st.cache_resource`` together with a lock (Grad-CAM hooks mutate the model); projections are also
kept on disk as safetensors (:class:`lab.runs.arraycache.ArrayCache`, size-bounded), so a restarted app does not
pay for UMAP again and no cache file can run code.

A run's ``config.json`` names its data folder: like the Train form's field, it is used only when it lies
under the data folder or a folder the server allows (:func:`checked_data_root`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from pathlib import Path

import numpy as np
import streamlit as st

import losses
from lab.analysis import geometry
from lab.analysis import projection as projections
from lab.datasets.registry import load_dataset
from lab.datasets.tensors import Dataset, default_data_dir
from lab.progress import Progress
from lab.reports.export import projector_bundle
from lab.runs.arraycache import ArrayCache
from lab.runs.contents import RunStoreError
from lab.runs.record import RunRecord, require_config
from lab.runs.restore import load_trained
from lab.runs.store import RunStore
from lab.settings.errors import ConfigError
from losses import plugins
from ui.memo import ServerMemo

ALLOW_DATA_ROOTS = "LOSSLENS_ALLOW_DATA_ROOTS"  # more folders (os.pathsep between them) a data folder may be in
CACHE_DIR = "LOSSLENS_CACHE_DIR"  # where projections are kept; default ~/.cache/losslens
PROJECTION_CACHE_MB = 64  # at most this much on disk; the least recently used projections go first
PROJECTIONS_KEPT = 64  # projections the server keeps in memory (80 kB each at 10,000 points)
PROJECTION_FORMAT = 2  # in every projection's cache key: changing what is stored or how it is made misses old ones


@st.cache_resource(show_spinner=False)
def loss_modules() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Load, once per server, the loss modules the person who started it named (``LOSSLENS_LOSS_MODULES``,
    installed ``losslens.losses`` entry points; never anything a browser sends) and the loss families whose
    libraries are installed: the problems of modules that could not be loaded, and how to add each missing
    family."""
    return tuple(plugins.load_configured()), tuple(losses.registry.load_families())


def cache_key(record: RunRecord) -> tuple[str, float]:
    """Identifies a run's current files: its folder and the time of its last status change."""
    return str(record.run_dir), record.updated


def _store_of(record: RunRecord) -> RunStore:
    return RunStore(record.run_dir.parent)


@dataclasses.dataclass(frozen=True)
class RunArrays:
    """What the pages draw for one run, as numpy arrays (see :mod:`lab.runs.contents` for the shapes)."""

    features: np.ndarray
    labels: np.ndarray
    logits: np.ndarray
    directions: np.ndarray | None
    snapshot_indices: np.ndarray
    penultimate: np.ndarray
    snapshot_images: np.ndarray | None  # None for runs written before runs stored their images
    snapshots: np.ndarray  # one row per stored epoch, numbered by snapshot_epochs
    snapshot_epochs: np.ndarray  # from 0 (before training), or from 1 for older runs
    snapshot_directions: np.ndarray | None  # per stored epoch, where stored
    snapshot_accuracy: np.ndarray | None  # per stored epoch, where stored

    @property
    def last_epoch(self) -> int:
        return int(self.snapshot_epochs[-1]) if len(self.snapshot_epochs) else 0

    def snapshot(self, epoch: int) -> np.ndarray:
        """The snapshot subset's features after ``epoch`` (0: before training, where stored)."""
        rows = np.flatnonzero(self.snapshot_epochs == epoch)
        if not len(rows):
            raise KeyError(f"epoch {epoch} is not among the stored epochs {self.snapshot_epochs.tolist()}")
        return self.snapshots[rows[0]]


def _numpy(tensor) -> np.ndarray | None:
    return None if tensor is None else tensor.numpy()


@st.cache_data(show_spinner=False, max_entries=64)
def _run_arrays(_record: RunRecord, key: tuple[str, float]) -> RunArrays:
    store = _store_of(_record)
    features = store.load_features(_record.run_id)
    snapshots = store.load_snapshots(_record.run_id)
    snapshots.check_subset(features, _record.run_id)
    return RunArrays(
        features=features.test_features.numpy(),
        labels=features.test_labels.numpy(),
        logits=features.test_logits.numpy(),
        directions=_numpy(features.class_directions),
        snapshot_indices=features.snapshot_indices.numpy(),
        penultimate=features.penultimate.numpy(),
        snapshot_images=_numpy(features.snapshot_images),
        snapshots=snapshots.features.numpy(),
        snapshot_epochs=snapshots.epochs.numpy(),
        snapshot_directions=_numpy(snapshots.class_directions),
        snapshot_accuracy=_numpy(snapshots.test_acc),
    )


def run_arrays(record: RunRecord) -> RunArrays:
    return _run_arrays(record, cache_key(record))


def allowed_data_roots() -> list[Path]:
    """The folders a data folder may lie in: the data folder, and those $LOSSLENS_ALLOW_DATA_ROOTS names."""
    extra = [Path(part) for part in os.environ.get(ALLOW_DATA_ROOTS, "").split(os.pathsep) if part.strip()]
    return [default_data_dir(), *(path.expanduser().absolute() for path in extra)]


def checked_data_root(value: str | None) -> str | None:
    """``value`` (a data folder typed in the form or stored in a config) as an absolute path, when it lies
    in an allowed folder (:func:`allowed_data_roots`; a relative path is taken inside the data folder);
    None for none. Raises :class:`ConfigError` otherwise, with the same words whether or not the path
    exists, so the field cannot be used to probe the server's folders."""
    if value is None or not value.strip():
        return None
    roots = allowed_data_roots()
    refusal = ConfigError(
        f"data_root: must be a folder inside the data folder {roots[0]}"
        + ("".join(f" or {root}" for root in roots[1:]))
        + f" (the server's administrator can allow more with {ALLOW_DATA_ROOTS})"
    )
    try:
        resolved = (roots[0] / value.strip()).resolve()
        allowed = [root.resolve() for root in roots]
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        raise refusal from None
    if not any(resolved == root or resolved.is_relative_to(root) for root in allowed):
        raise refusal
    return str(resolved)


@st.cache_resource(show_spinner=False, max_entries=4)
def dataset_for(name: str, data_root: str | None) -> Dataset:
    return load_dataset(name, data_root)


def dataset_of(record: RunRecord) -> Dataset:
    """The dataset ``record`` was trained on; its data folder only if allowed (else :class:`ConfigError`)."""
    config = require_config(record)
    return dataset_for(config.dataset, checked_data_root(config.data_root))


@st.cache_resource(show_spinner=False, max_entries=24)
def _trained(_record: RunRecord, key: tuple[str, float]) -> tuple:
    model, head = load_trained(_store_of(_record), _record)  # shapes from the registry: no dataset needed
    return model, head, threading.Lock()


def trained_model(record: RunRecord) -> tuple:
    """(model, head, lock) of a finished run, loaded once; hold the lock while using hooks."""
    return _trained(record, cache_key(record))


@st.cache_data(show_spinner=False, max_entries=256)
def _weights_problem(_record: RunRecord, key: tuple[str, float]) -> str | None:
    try:
        _trained(_record, key)
    except (RunStoreError, ValueError, KeyError, RuntimeError) as err:
        return str(err)
    return None


def weights_problem(record: RunRecord) -> str | None:
    """Why this run's weights cannot be used, or None; they are rebuilt into the model to be sure."""
    return _weights_problem(record, cache_key(record))


@st.cache_data(show_spinner=False, max_entries=128)
def _angle_stats(_arrays: RunArrays, key: tuple[str, float]) -> geometry.AngleStats:
    return geometry.angle_stats(_arrays.features, _arrays.labels, _arrays.logits.shape[1], _arrays.directions)


def angle_stats(record: RunRecord, arrays: RunArrays) -> geometry.AngleStats:
    """Angle statistics of ``record``'s test features (``arrays`` are its :func:`run_arrays`)."""
    return _angle_stats(arrays, cache_key(record))


@st.cache_data(show_spinner=False, max_entries=64)
def _summary(_record: RunRecord, key: tuple[str, float], margin_deg: float) -> dict[str, float]:
    arrays = run_arrays(_record)
    return geometry.summary(arrays.features, arrays.labels, arrays.logits, arrays.directions, margin_deg)


def summary(record: RunRecord, margin_deg: float = 10.0) -> dict[str, float]:
    return _summary(record, cache_key(record), margin_deg)


def projection_cache() -> ArrayCache:
    """$LOSSLENS_CACHE_DIR/projections (default ~/.cache/losslens/projections), at most
    :data:`PROJECTION_CACHE_MB` megabytes."""
    base = os.environ.get(CACHE_DIR) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "losslens"
    return ArrayCache(Path(base) / "projections", PROJECTION_CACHE_MB * 2**20)


def _stored_projection(stored: dict[str, np.ndarray] | None, rows: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A cache entry's coordinates and variance ratios when they are what :func:`projection` stores."""
    if stored is None or set(stored) != {"coords", "ratio"}:
        return None
    coords, ratio = stored["coords"], stored["ratio"]
    if coords.dtype.kind != "f" or coords.shape != (rows, 2) or ratio.dtype.kind != "f" or ratio.shape != (2,):
        return None
    if not (np.isfinite(coords).all() and np.isfinite(ratio).all()):
        return None
    return coords, ratio


@st.cache_resource(show_spinner=False)
def _projections_kept() -> ServerMemo[tuple[np.ndarray, np.ndarray]]:
    # What this server has read or computed: a rerun reads no file, two sessions compute a UMAP once.
    return ServerMemo(PROJECTIONS_KEPT)


def projection(record: RunRecord, source: str, method: str, progress: Progress | None = None) -> tuple[np.ndarray, str]:
    """2-D PCA or UMAP of the snapshot subset's features or penultimate activations, with a note on how
    it was made: kept in memory and on disk, else computed (a UMAP reports its steps to ``progress``).
    Not ``st.cache_data``, whose replay forbids drawing a progress bar made outside the function."""
    metric = "cosine" if source == "features" else "euclidean"
    entry = json.dumps([*cache_key(record), source, method, PROJECTION_FORMAT])

    def read_or_compute() -> tuple[np.ndarray, np.ndarray]:
        arrays = run_arrays(record)
        found = _stored_projection(projection_cache().get(entry), len(arrays.snapshot_indices))
        if found is None:
            data = arrays.penultimate if source == "penultimate" else arrays.features[arrays.snapshot_indices]
            if method == "PCA":
                coords, ratio = projections.pca(data, 2)
            else:
                coords, ratio = projections.umap(data, 2, metric=metric, progress=progress), np.zeros(2)
            found = np.asarray(coords, dtype=np.float32), np.asarray(ratio[:2], dtype=np.float64)
            projection_cache().put(entry, {"coords": found[0], "ratio": found[1]})
        return found

    coords, ratio = _projections_kept().compute(entry, read_or_compute)
    if method == "PCA":
        return coords, f"PC1 {ratio[0]:.0%} · PC2 {ratio[1]:.0%} of variance"
    return coords, f"UMAP ({metric})"


def projector_zip(record: RunRecord) -> bytes:
    """The run's TensorFlow Embedding Projector bundle, made when its download is clicked: the sprite needs
    the run's dataset, which a page should not load (or download) just to offer the button."""
    return projector_bundle(_store_of(record), record.run_id, dataset_of(record))
