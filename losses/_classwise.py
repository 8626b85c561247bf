"""Per-class segment statistics of a batch, vectorised (no Python loop over classes)."""

from __future__ import annotations

import torch


def class_means(values: torch.Tensor, labels: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of the rows of ``values`` (B x D) for each class, and each class's count in the batch.

    Returns ``(means, counts)``: ``means`` is n_classes x D and differentiable wrt ``values``;
    classes absent from the batch get a zero row and a count of 0.
    """
    counts = torch.bincount(labels, minlength=n_classes)
    sums = values.new_zeros(n_classes, values.shape[1]).index_add(0, labels, values)
    means = sums / counts.clamp(min=1).unsqueeze(1).to(values.dtype)
    return means, counts
