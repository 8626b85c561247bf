"""Center loss: cross-entropy plus a pull of every feature towards its class center.

    L = CE(W f + b, y) + lambda * 1/(2B) * sum_i ||f_i - c_{y_i}||^2

The centers c_j are not trained by the optimiser but by the paper's own rule, once per training
step, with the batch's features (no gradient):

    delta_c_j = sum_{i: y_i = j} (c_j - f_i) / (1 + n_j),    c_j <- c_j - alpha * delta_c_j

where n_j is the number of samples of class j in the batch; classes absent from the batch keep
their center. The update does not depend on lambda. Centers start at the origin; each step closes
alpha * n_j / (1 + n_j) of the gap to the batch's class mean (about 40% for 6 samples of a class at
alpha = 0.5), so they catch up with their classes within the first few dozen steps.

Default weight lambda = 0.1, not the paper's 0.01. The paper's MNIST toy applies 0.01 to LeNet++
PReLU features whose coordinates reach tens to a hundred; this app's features come out of a
BatchNorm with norms around 4-8, and the center term is quadratic in feature units, so the same
lambda pulls far more weakly here: 0.01 gives a picture indistinguishable from softmax, 1 costs
accuracy on 28x28 data, 0.1 visibly shrinks the classes at no cost in accuracy (bench/RESULTS.md).

Paper: Wen, Zhang, Li, Qiao, "A Discriminative Feature Learning Approach for Deep Face
Recognition", ECCV 2016, https://ydwen.github.io/papers/WenECCV16.pdf (no arXiv version).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from losses._classwise import CenterTrackingHead, class_means
from losses.base import Terms, hparam
from losses.registry import register


@dataclasses.dataclass(frozen=True)
class CenterParams:
    weight: float = hparam(0.1, "lambda: weight of the center term added to cross-entropy", low=0.0, high=100.0)
    alpha: float = hparam(0.5, "center learning rate of the paper's update rule", low=0.0, high=1.0)


@register
class CenterHead(CenterTrackingHead):
    name = "center"
    Params = CenterParams

    def feature_term(self, features: Tensor, labels: Tensor, logits: Tensor) -> Terms:
        centers = self.centers.detach()
        value = (features - centers[labels]).square().sum() / (2 * len(labels))
        if self.training:
            self.centers = self.updated_centers(features.detach(), labels)
        return value, {}

    def updated_centers(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The centers after one step of the paper's rule on this batch (absent classes unchanged)."""
        batch_means, counts = class_means(features, labels, self.n_classes)
        counts = counts.unsqueeze(1).to(features.dtype)
        delta = counts * (self.centers - batch_means) / (1.0 + counts)
        return self.centers - self.params.alpha * delta
