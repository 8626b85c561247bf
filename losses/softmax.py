"""Softmax cross-entropy: the baseline every other loss is compared with.

    z = W f + b,    L = -log( exp(z_y) / sum_j exp(z_j) )

A linear classifier with bias on the feature f, trained by plain cross-entropy. Nothing asks the
features to be compact or separated by an angle; in 2-D they typically spread out radially, as
wedges from the origin whose length grows with confidence. Use it as the reference picture: how
much tighter, more angular or more evenly spread does each other loss make the classes?
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from losses.base import LossHead
from losses.registry import register


@dataclasses.dataclass(frozen=True)
class SoftmaxParams:
    """Softmax cross-entropy has no hyperparameters."""


@register
class SoftmaxHead(LossHead):
    name = "softmax"
    summary = "Linear classifier with bias + cross-entropy (the baseline)."
    paper = "Softmax regression output layer; Goodfellow et al., Deep Learning (2016), section 6.2.2.3."
    Params = SoftmaxParams

    def __init__(self, feat_dim: int, n_classes: int, params: SoftmaxParams) -> None:
        super().__init__(feat_dim, n_classes, params)
        self.classifier = nn.Linear(feat_dim, n_classes)

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        ce = F.cross_entropy(self.logits(features), labels)
        return ce, {"ce": ce}

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features.float())

    def class_directions(self) -> torch.Tensor:
        return self.classifier.weight.detach()
