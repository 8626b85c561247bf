"""AMC-Loss: cross-entropy plus an angular-margin contrastive term on the unit sphere.

    z_i = f_i / ||f_i||,    d_ij = arccos(clip(z_i . z_j, -1 + 1e-7, 1 - 1e-7))   (geodesic distance)
    l_ij = d_ij^2                     if y_i == y_j   (pull same-class pairs together)
    l_ij = max(0, m_g - d_ij)^2       otherwise       (push other classes at least m_g radians away)
    L = CE(W f + b, y) + lambda * mean over pairs of l_ij

Pairs follow the official code: the batch is split in halves and sample i is paired with sample
i + floor(B/2) (an odd last sample goes unpaired); ``pairing=all`` uses every ordered pair i != j
instead. The mean is taken jointly over positive and negative pairs, with ground-truth labels.

Paper: Choi, Som, Turaga, "AMC-Loss: Angular Margin Contrastive Loss for Improved Explainability
in Image Classification", CVPR Workshops 2020, https://arxiv.org/abs/2004.09805

What to look for in the plots: only the *direction* of a feature enters the term, so look at the
normalised (circle/sphere) view. Compared with softmax, each class should form a narrower angular
wedge, and neighbouring wedges should be separated by an empty gap of roughly m_g radians (0.5 rad,
about 29 degrees, by default). The feature norms (distance from the origin) are left to
cross-entropy. The paper's claim is qualitative: Grad-CAM maps become more focused on the object.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from losses.base import CrossEntropyPlusHead, hparam
from losses.registry import register

COSINE_CLIP = 1e-7


@dataclasses.dataclass(frozen=True)
class AMCParams:
    margin: float = hparam(
        0.5, "angular margin m_g in radians that different-class pairs are pushed apart to", low=0.0, high=math.pi
    )
    weight: float = hparam(0.1, "lambda: weight of the AMC term added to cross-entropy", low=0.0, high=100.0)
    pairing: str = hparam(
        "half",
        "half: pair sample i with i + B/2 (official); all: every ordered pair of different samples",
        choices=("half", "all"),
    )


def geodesic_distance(cosine: torch.Tensor) -> torch.Tensor:
    """arccos of the clipped cosine; a clipped value passes no gradient back."""
    return torch.arccos(cosine.clamp(-1.0 + COSINE_CLIP, 1.0 - COSINE_CLIP))


def amc_pair_losses(distance: torch.Tensor, same_class: torch.Tensor, margin: float) -> torch.Tensor:
    """Per-pair AMC loss: squared distance for same-class pairs, squared hinge below the margin otherwise."""
    return torch.where(same_class, distance.square(), (margin - distance).clamp(min=0.0).square())


@register
class AMCHead(CrossEntropyPlusHead):
    name = "amc"
    summary = "Cross-entropy + angular contrastive term: same-class pairs close on the sphere, others ≥ m_g apart."
    paper = (
        "Choi, Som, Turaga, AMC-Loss: Angular Margin Contrastive Loss for Improved Explainability in Image "
        "Classification, CVPR Workshops 2020. https://arxiv.org/abs/2004.09805"
    )
    Params = AMCParams
    term_name = "amc"

    def feature_term(
        self, features: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        unit = F.normalize(features, dim=1)
        if self.params.pairing == "half":
            half = len(labels) // 2
            cosine = (unit[:half] * unit[half : 2 * half]).sum(dim=1)
            same_class = labels[:half] == labels[half : 2 * half]
        else:
            off_diagonal = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
            cosine = (unit @ unit.T)[off_diagonal]
            same_class = (labels.unsqueeze(1) == labels.unsqueeze(0))[off_diagonal]
        if cosine.numel() == 0:
            return features.new_zeros(()), {}
        pair_losses = amc_pair_losses(geodesic_distance(cosine), same_class, self.params.margin)
        return pair_losses.mean(), {}
