"""Grad-CAM for the pages: the images to explain, the shared view settings, cached CAMs and metrics.

CAMs are computed once per (run, images, method, target, layer) and kept by ``st.cache_data``; a rerun
that changes only the display (overlay or raw map, scale, opacity) recomputes nothing.

The Grad-CAM page draws its images from the dataset when this machine has it, else from the uint8 test
images every run stores for its snapshot subset (:class:`ImageSource`); the inspector starts from the
stored images. Both work with an empty data folder. Normalising the images uses the train split's
statistics, which the dataset's registry entry declares.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import streamlit as st
import torch

from lab import datasets
from lab.datasets import normalize
from lab.interpret import gradcam
from lab.interpret.gradcam import CamResult, compute_cams, resolve_targets
from lab.interpret.scoring import MetricResult
from lab.progress import Progress
from lab.runs.record import RunRecord, require_config
from ui import loaders, session
from ui.memo import ServerMemo

IMAGE_MODES = ("random", "by class", "misclassified", "upload")
SCALES = {
    "each map": "each map on its own scale",
    "shared raw": "one raw scale per row",
}
SCALE_HELP = (
    "Each map on its own scale (the Grad-CAM paper's and pytorch-grad-cam's convention) shows where each "
    "model looks. One raw scale per row compares map magnitudes instead; they grow with each loss's logit "
    "scale (CosFace's and ArcFace's s multiplies every logit), so raw maps of different losses show "
    "the losses' scales, not where their models look."
)
LAYERS = {"last": "last convolution", "previous": "earlier convolution (finer map)"}
LAYER_HELP = (
    "Grad-CAM's usual layer is the last convolution: the most abstract, the coarsest map (7x7 on 28x28 "
    "images, 4x4 on 8x8 digits). The earlier convolution has twice the resolution but sees less context."
)
DEFAULT_OPACITY = 0.5
INTERPRET_IMAGES = 100  # the Grad-CAM page's default number of stored images the metrics score
METRICS_KEPT = 64  # computed metric sets the server keeps (a few kB each), least recently used dropped first


@dataclasses.dataclass(frozen=True, eq=False)
class ImageSource:
    """Test images to explain: ``images`` (uint8 N x C x H x W) with their ``labels`` and test-set
    ``indices``; ``stored`` says they are the run's stored snapshot subset, not the whole test set."""

    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    class_names: tuple[str, ...]
    stored: bool
    test_size: int

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[2])

    def rows(self, indices: np.ndarray) -> np.ndarray:
        """Positions in :attr:`images` of the test-set ``indices`` (each must be among :attr:`indices`)."""
        where = {int(index): row for row, index in enumerate(self.indices)}
        return np.array([where[int(index)] for index in indices], dtype=np.int64)

    def caption(self) -> str:
        if not self.stored:
            return f"Images: the {self.test_size:,} test images of the dataset."
        return (
            f"Images: the {len(self.indices):,} test images the runs stored (of {self.test_size:,}); "
            "the dataset is not on this machine, so images are drawn from these."
        )


def dataset_on_machine(record: RunRecord) -> bool:
    """Whether ``record``'s dataset can be loaded here without a download."""
    config = require_config(record)
    info = datasets.info(config.dataset)
    try:
        return info.offline or info.local_copy(loaders.checked_data_root(config.data_root)) is not None
    except ValueError:  # a data folder the server does not allow: the stored images still work
        return False


def stored_images(record: RunRecord, arrays: loaders.RunArrays) -> ImageSource | None:
    """The uint8 test images ``record`` stored for its snapshot subset; None for a run that stored none."""
    if arrays.snapshot_images is None:
        return None
    indices = np.asarray(arrays.snapshot_indices, dtype=np.int64)
    return ImageSource(
        np.asarray(arrays.snapshot_images),
        np.asarray(arrays.labels)[indices],
        indices,
        tuple(datasets.info(require_config(record).dataset).class_names),
        stored=True,
        test_size=len(arrays.labels),
    )


def image_source(record: RunRecord, arrays: loaders.RunArrays) -> ImageSource:
    """The dataset's test images when this machine has it, else the run's stored snapshot images."""
    stored = stored_images(record, arrays)
    if stored is not None and not dataset_on_machine(record):
        return stored
    dataset = loaders.dataset_of(record)
    return ImageSource(
        dataset.test.images.numpy(),
        dataset.test.labels.numpy(),
        np.arange(len(dataset.test)),
        tuple(dataset.class_names),
        stored=False,
        test_size=len(dataset.test),
    )


def pick_images(
    labels: np.ndarray, predictions: list[np.ndarray], mode: str, count: int, seed: int, class_index: int | None = None
) -> np.ndarray:
    """Positions of the images to explain: a seeded random draw from all images, from one class, or from
    those misclassified by any of the runs (fewer than ``count`` when not enough exist)."""
    labels = np.asarray(labels)
    if mode == "random":
        pool = np.arange(len(labels))
    elif mode == "by class":
        pool = np.flatnonzero(labels == class_index)
    elif mode == "misclassified":
        wrong = np.zeros(len(labels), dtype=bool)
        for predicted in predictions:
            wrong |= np.asarray(predicted) != labels
        pool = np.flatnonzero(wrong)
    else:
        raise ValueError(f"unknown image mode {mode!r} (choose from: {', '.join(IMAGE_MODES[:3])})")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(pool, size=min(count, len(pool)), replace=False)) if len(pool) else pool


# ---------------------------------------------------------------- view settings, shared by the page and the inspector


@dataclasses.dataclass(frozen=True)
class View:
    """How maps are drawn: ``scale`` (a :data:`SCALES` key), overlay ``opacity``, CAM ``layer``."""

    scale: str = "each map"
    opacity: float = DEFAULT_OPACITY
    layer: str = "last"

    @property
    def per_map(self) -> bool:
        return self.scale == "each map"


def _keep(key: str, default: object) -> None:
    # A widget's key is dropped on a page that does not draw it; writing it back keeps the choice
    # when the user moves between the Grad-CAM page and the inspector.
    st.session_state[key] = st.session_state.get(key, default)


def view_controls() -> View:
    """The scale, opacity and layer widgets (session keys shared by every page that draws maps)."""
    defaults = View()
    _keep(session.CAM_SCALE, defaults.scale)
    _keep(session.CAM_OPACITY, defaults.opacity)
    _keep(session.CAM_LAYER, defaults.layer)
    scale = st.segmented_control("Colour scale", list(SCALES), key=session.CAM_SCALE, help=SCALE_HELP)
    opacity = st.slider("Map opacity", 0.0, 1.0, step=0.05, key=session.CAM_OPACITY)
    layer = st.selectbox("Layer", list(LAYERS), format_func=LAYERS.get, key=session.CAM_LAYER, help=LAYER_HELP)
    return View(scale or defaults.scale, float(opacity), layer)


def colorbar(view: View, vmax: float | None = None) -> bytes:
    """The legend PNG for ``view``: 0 to 1 of each map, or 0 to the largest raw value shown."""
    if view.per_map:
        return gradcam.colorbar_png("0 (the map's lowest)", "1 (its highest)", "Grad-CAM, each map on its own scale")
    return gradcam.colorbar_png("0", f"{vmax or 1.0:.3g} (largest in view)", "Grad-CAM raw value, one scale per row")


def scaled(maps: list[np.ndarray], view: View) -> tuple[list[np.ndarray], float, float]:
    """The maps of one row ready to colour, with the (vmin, vmax) of their colour scale."""
    if view.per_map:
        return list(gradcam.normalize_each(np.stack(maps))), 0.0, 1.0
    vmin, vmax = gradcam.shared_scale(maps)
    return maps, vmin, vmax


# ---------------------------------------------------------------- cached computation


def statistics(record: RunRecord) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The (mean, std) ``record`` normalized its images with; from the dataset only where none is stored."""
    return datasets.info(require_config(record).dataset).train_statistics


@st.cache_data(show_spinner=False, max_entries=256)
def _cams(
    _record: RunRecord,
    key: tuple[str, float],
    images: np.ndarray,
    labels: np.ndarray | None,
    method: str,
    mode: str,
    chosen_class: int | None,
    layer: str,
) -> CamResult:
    model, head, lock = loaders.trained_model(_record)
    normalized = normalize(torch.from_numpy(images), *statistics(_record))
    with lock:
        with torch.inference_mode():
            logits = head.logits(model(normalized))
        targets = resolve_targets(logits, labels, mode, chosen_class)
        return compute_cams(model, head, normalized, method, targets, layer=layer)


def cams(
    record: RunRecord,
    images: np.ndarray,
    labels: np.ndarray | None,
    method: str,
    mode: str,
    chosen_class: int | None = None,
    layer: str = "last",
) -> CamResult:
    """CAMs of ``images`` (uint8 N x C x H x W) under ``record``'s model, cached."""
    return _cams(record, loaders.cache_key(record), images, labels, method, mode, chosen_class, layer)


@st.cache_resource(show_spinner=False)
def _metrics_done() -> ServerMemo[dict[str, MetricResult | None]]:
    # What this server has computed, so another page (Compare) can show it without computing.
    return ServerMemo(METRICS_KEPT)


def metrics_key(record: RunRecord, method: str, layer: str, n_images: int) -> tuple:
    return (*loaders.cache_key(record), method, layer, n_images)


def cached_metrics(record: RunRecord, method: str, layer: str, n_images: int) -> dict[str, MetricResult | None] | None:
    """The interpretability metrics of ``record`` if this server has computed them, else None."""
    return _metrics_done().get(metrics_key(record, method, layer, n_images))


def metrics(
    record: RunRecord,
    arrays: loaders.RunArrays,
    method: str,
    layer: str,
    n_images: int,
    progress: Progress | None = None,
) -> dict[str, MetricResult | None]:
    """Interpretability metrics of ``record``'s maps on the first ``n_images`` stored test images,
    computed once per run and settings (``progress`` is told how far a computation is)."""
    if arrays.snapshot_images is None:
        raise ValueError(
            f"run {record.run_id} stores no test images (it was trained before runs kept them): "
            "retrain it to score its maps"
        )

    def score() -> dict[str, MetricResult | None]:
        config = require_config(record)
        model, head, lock = loaders.trained_model(record)
        with lock:
            return gradcam.interpretability(
                model,
                head,
                np.asarray(arrays.snapshot_images[:n_images]),
                statistics(record),
                method=method,
                layer=layer,
                foreground_known=datasets.info(config.dataset).foreground_known,
                progress=progress,
            )

    return _metrics_done().compute(metrics_key(record, method, layer, n_images), score)
