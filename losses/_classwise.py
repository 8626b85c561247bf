"""Per-class statistics of a batch, vectorized (no Python loop over classes), and the base of the heads
that track a center per class (center loss, LMD)."""

from __future__ import annotations

from typing import Any

import torch

from losses.base import CrossEntropyPlusHead


def class_means(values: torch.Tensor, labels: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of the rows of ``values`` (B x D) for each class, and each class's count in the batch.

    Returns ``(means, counts)``: ``means`` is n_classes x D and differentiable wrt ``values``;
    classes absent from the batch get a zero row and a count of 0.
    """
    counts = torch.bincount(labels, minlength=n_classes)
    sums = values.new_zeros(n_classes, values.shape[1]).index_add(0, labels, values)
    means = sums / counts.clamp(min=1).unsqueeze(1).to(values.dtype)
    return means, counts


class CenterTrackingHead(CrossEntropyPlusHead):
    """Cross-entropy plus a term about per-class centers that the head keeps in the buffer ``centers``
    (K x D, starting at the origin) and moves by its own rule in training-mode forwards. The centers,
    not the classifier weights, are what the plots draw as class markers."""

    renamed_state = {"centres": "centers"}  # runs saved before the rename

    def __init__(self, feat_dim: int, n_classes: int, params: Any) -> None:
        super().__init__(feat_dim, n_classes, params)
        self.register_buffer("centers", torch.zeros(n_classes, feat_dim))

    def class_directions(self) -> torch.Tensor:
        """The class centers: the points each class is pulled towards."""
        return self.centers.detach().clone()
