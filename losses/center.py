"""Center loss: cross-entropy plus a pull of every feature towards its class centre.

    L = CE(W f + b, y) + lambda * 1/(2B) * sum_i ||f_i - c_{y_i}||^2

The centres c_j are not trained by the optimiser but by the paper's own rule, once per training
step, with the batch's features (no gradient):

    delta_c_j = sum_{i: y_i = j} (c_j - f_i) / (1 + n_j),    c_j <- c_j - alpha * delta_c_j

where n_j is the number of samples of class j in the batch; classes absent from the batch keep
their centre. The update does not depend on lambda. Centres start at the origin; each step closes
alpha * n_j / (1 + n_j) of the gap to the batch's class mean (about 40% for 6 samples of a class at
alpha = 0.5), so they catch up with their classes within the first few dozen steps.

Default weight lambda = 0.1, not the paper's 0.01. The paper's MNIST toy applies 0.01 to LeNet++
PReLU features whose coordinates reach tens to a hundred; this app's features come out of a
BatchNorm with norms around 4-8, and the centre term is quadratic in feature units, so the same
lambda pulls far more weakly here. Measured on digits
with a 2-D head (15 epochs), samples lie a median 1.17 from their class mean under softmax, 1.07
with lambda = 0.01 (a picture indistinguishable from softmax), 0.70 with 0.1 and 0.40 with 1. On the
Fashion-MNIST subset (8000 images, 4 epochs) lambda = 1 costs 5 points of test accuracy in 2-D and
4 in 3-D, while 0.1 stays within 2 points of softmax in 2-D and level in 3-D.

Paper: Wen, Zhang, Li, Qiao, "A Discriminative Feature Learning Approach for Deep Face
Recognition", ECCV 2016, https://ydwen.github.io/papers/WenECCV16.pdf (no arXiv version).

What to look for in the plots: compared with softmax's long radial wedges, each class should
shrink into a compact blob around its centre (drawn as the class "direction" marker), and the
blobs should still be separable by the linear classifier. Raising lambda shrinks the blobs further;
too high a lambda collapses all classes towards one point and accuracy drops.
"""

from __future__ import annotations

import dataclasses

import torch

from losses._classwise import class_means
from losses.base import CrossEntropyPlusHead, hparam
from losses.registry import register


@dataclasses.dataclass(frozen=True)
class CenterParams:
    weight: float = hparam(0.1, "lambda: weight of the centre term added to cross-entropy", low=0.0, high=100.0)
    alpha: float = hparam(0.5, "centre learning rate of the paper's update rule", low=0.0, high=1.0)


@register
class CenterHead(CrossEntropyPlusHead):
    name = "center"
    summary = "Cross-entropy + pull of each feature towards its class centre (centres tracked by their own rule)."
    paper = (
        "Wen, Zhang, Li, Qiao, A Discriminative Feature Learning Approach for Deep Face Recognition, ECCV 2016. "
        "https://ydwen.github.io/papers/WenECCV16.pdf"
    )
    Params = CenterParams
    term_name = "center"

    def __init__(self, feat_dim: int, n_classes: int, params: CenterParams) -> None:
        super().__init__(feat_dim, n_classes, params)
        self.register_buffer("centres", torch.zeros(n_classes, feat_dim))

    def feature_term(
        self, features: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        centres = self.centres.detach()
        value = (features - centres[labels]).square().sum() / (2 * len(labels))
        if self.training:
            self.centres = self.updated_centres(features.detach(), labels)
        return value, {}

    def updated_centres(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The centres after one step of the paper's rule on this batch (absent classes unchanged)."""
        batch_means, counts = class_means(features, labels, self.n_classes)
        counts = counts.unsqueeze(1).to(features.dtype)
        delta = counts * (self.centres - batch_means) / (1.0 + counts)
        return self.centres - self.params.alpha * delta

    def class_directions(self) -> torch.Tensor:
        """The class centres (not the classifier weights): the points each class is pulled towards."""
        return self.centres.detach().clone()
