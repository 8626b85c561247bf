"""Pixel-exact enlarging of small images (8x8 digits, 28x28 thumbnails) for display and export."""

from __future__ import annotations

import math

import numpy as np


def whole_factor(height: int, width: int, min_side: int) -> int:
    """The smallest whole factor that makes the shorter side at least ``min_side`` pixels (at least 1)."""
    return max(1, math.ceil(min_side / min(height, width)))


def enlarge(image: np.ndarray, factor: int, axes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """``image`` enlarged ``factor`` times along ``axes`` (height, width) by repeating each pixel: the
    nearest-neighbour upscaling that keeps every pixel sharp instead of smoothing it."""
    pixels = np.asarray(image)
    return pixels.repeat(factor, axis=axes[0]).repeat(factor, axis=axes[1])
