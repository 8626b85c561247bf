"""Hand-built cases for the interpretability tests: a model whose decision reads one known 3x3 patch, images and
maps for it, and a small CNN to compare with pytorch-grad-cam."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

SIZE = 12
PATCH = (slice(4, 7), slice(6, 9))  # the 3x3 pixels the toy model reads


class PatchModel(nn.Module):
    """Two-class logits from a fixed linear read-out of one 3x3 patch: z = 6 * (mean(patch) - 0.5), logits (z, -z)."""

    def __init__(self) -> None:
        super().__init__()
        weight = torch.zeros(SIZE, SIZE)
        weight[PATCH] = 6 / 9
        self.register_buffer("weight", weight)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        z = (images[:, 0] * self.weight).sum((1, 2)) - 3.0
        return torch.stack([z, -z], 1)


def patch_images(n: int, seed: int = 0) -> torch.Tensor:
    """Noise with a bright patch where the model reads, so class 0 is predicted with confidence."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 0.5, size=(n, 1, SIZE, SIZE)).astype(np.float32)
    images[:, 0, PATCH[0], PATCH[1]] = 1.0 + rng.normal(0.0, 0.1, size=(n, 3, 3))
    return torch.from_numpy(images)


def patch_maps(n: int) -> np.ndarray:
    maps = np.zeros((n, SIZE, SIZE), np.float32)
    maps[:, PATCH[0], PATCH[1]] = 1.0
    return maps


def small_cnn(classes: int = 3) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, classes)
    ).eval()
