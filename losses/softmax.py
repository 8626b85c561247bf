"""Softmax cross-entropy: the baseline every other loss is compared with.

    z = W f + b,    L = -log( exp(z_y) / sum_j exp(z_j) )

A linear classifier with bias on the feature f, trained by plain cross-entropy. Nothing asks the
features to be compact or separated by an angle; in 2-D they typically spread out radially, as
wedges from the origin whose length grows with confidence. It is the reference the other losses are
measured against (bench/RESULTS.md, quality).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from losses.base import LossHead
from losses.registry import register


@dataclasses.dataclass(frozen=True)
class SoftmaxParams:
    """Softmax cross-entropy has no hyperparameters."""


@register
class SoftmaxHead(LossHead):
    name = "softmax"
    Params = SoftmaxParams

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        ce = F.cross_entropy(self.logits(features), labels)
        return ce, {"ce": ce}
