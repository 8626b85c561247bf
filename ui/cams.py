"""Grad-CAM for the pages: which test images to show, and cached CAM computation per run.

CAMs are computed once per (run, images, method, target) and kept by ``st.cache_data``; a rerun
that changes only the display (overlay or raw map, shared or per-map scale) recomputes nothing.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from lab.data import normalize
from lab.gradcam import CamResult, compute_cams, resolve_targets
from lab.runstore import RunRecord
from ui import loaders

IMAGE_MODES = ("random", "by class", "misclassified", "upload")
FAITHFULNESS_IMAGES = 8


def pick_images(
    labels: np.ndarray, predictions: list[np.ndarray], mode: str, count: int, seed: int, class_index: int | None = None
) -> np.ndarray:
    """Test-image indices to explain: a seeded random draw from all images, from one class, or from
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


@st.cache_data(show_spinner=False, max_entries=256)
def _cams(
    _record: RunRecord,
    key: tuple[str, float],
    images: np.ndarray,
    labels: np.ndarray | None,
    method: str,
    mode: str,
    chosen_class: int | None,
    faithfulness: bool,
) -> CamResult:
    model, head, lock = loaders.trained_model(_record)
    dataset = loaders.dataset_of(_record)
    normalised = normalize(torch.from_numpy(images), dataset.train.mean, dataset.train.std)
    with lock:
        with torch.inference_mode():
            logits = head.logits(model(normalised))
        targets = resolve_targets(logits, labels, mode, chosen_class)
        return compute_cams(model, head, normalised, method, targets, faithfulness=faithfulness)


def cams(
    record: RunRecord,
    images: np.ndarray,
    labels: np.ndarray | None,
    method: str,
    mode: str,
    chosen_class: int | None = None,
    faithfulness: bool = True,
) -> CamResult:
    """CAMs of ``images`` (uint8 N x C x H x W) under ``record``'s model, cached."""
    return _cams(record, loaders.cache_key(record), images, labels, method, mode, chosen_class, faithfulness)
