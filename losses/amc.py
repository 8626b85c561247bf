"""AMC-Loss: cross-entropy plus an angular-margin contrastive term on the unit sphere.

    z_i = f_i / ||f_i||,    d_ij = arccos(clip(z_i . z_j, -1 + 1e-7, 1 - 1e-7))   (geodesic distance)
    l_ij = d_ij^2                     if a_i == a_j   (pull pairs of one class together)
    l_ij = max(0, m_g - d_ij)^2       otherwise       (push other classes at least m_g radians away)
    L = CE(W f + b, y) + lambda * w(t) * mean over pairs of l_ij

Pairs: the batch is split in halves and sample i is paired with sample i + floor(B/2) (an odd last
sample goes unpaired), as in the official code; ``pairing=all`` uses every ordered pair i != j
instead. The mean is taken jointly over positive and negative pairs.

What the official training script (hchoi71/AMC-Loss, Train_AMC.py) does, and what LossLens does:

- Pair labels a_i. The official script compares the network's own predictions, argmax of its
  logits (``merged_tar = tf.where(mask_ph == 1, target_hard, y_ph)`` with the mask all ones in
  supervised training); its visualization script uses the ground truth. ``pair_labels`` chooses:
  ``truth`` (a_i = y_i, the default) or ``prediction`` (a_i = argmax_j z_ij, the official script).
  The prediction carries no gradient. With predictions, a misclassified sample is pulled towards
  the class it was mistaken for, and pairs the network already confuses are never pushed apart.
- Weight w(t). The official script multiplies lambda = 0.1 by a ramp-up over its 200 epochs:
  w = 0 in epoch 0, 100 exp(-5 (1 - e/50)^2) in epochs e = 1..49, 100 from epoch 50 on, so the
  effective weight is 0 at first, about 0.41 at epoch 10 and 10 from epoch 50.
  ``weight_schedule=official`` applies that ramp with the run's length standing for the 200 epochs
  (epoch e = floor(200 (t - 1) / T) at optimizer step t of T, from ``plan``); ``constant`` (the
  default) keeps w = 1, lambda throughout, as the PyTorch port (hchen605/amc-loss-pytorch) does.
  The official script also ramps its learning rate with the same curve; that is the optimizer's
  business and is not reproduced here.

Defaults: ground-truth pairs and a constant lambda = 0.1, chosen by measuring the four combinations
on digits (2-D and 3-D heads) and both pairings on Fashion-MNIST (2-D head); bench/RESULTS.md, "AMC
options". Predicted pairs matched ground-truth pairs in accuracy and angles, so the default keeps
the labels a supervised loss means, the ones the official visualization script and the PyTorch port
use. The official ramp-up, scaled to a run of this app's length, lets the AMC term reach 100 times
lambda and outweigh cross-entropy: with 2-D heads it wrecked training, and with 3-D heads it cost
accuracy and narrowed the angles between classes.

Paper: Choi, Som, Turaga, "AMC-Loss: Angular Margin Contrastive Loss for Improved Explainability
in Image Classification", CVPR Workshops 2020, https://arxiv.org/abs/2004.09805
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from losses.base import CrossEntropyPlusHead, Terms, hparam, normalize
from losses.registry import register

COSINE_CLIP = 1e-7
OFFICIAL_EPOCHS = 200  # the official run length the ramp-up is defined over
OFFICIAL_RAMPUP_EPOCHS = 50
OFFICIAL_WEIGHT_MAX = 100.0


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
    pair_labels: str = hparam(
        "truth",
        "which labels decide if a pair is of one class: truth (ground truth) or prediction (the network's "
        "argmax, as the official training script does)",
        choices=("truth", "prediction"),
    )
    weight_schedule: str = hparam(
        "constant",
        "constant: lambda throughout; official: lambda x the official ramp-up (0, then up to 100 x lambda "
        "from a quarter of the run on)",
        choices=("constant", "official"),
    )


def geodesic_distance(cosine: torch.Tensor) -> torch.Tensor:
    """arccos of the clipped cosine; a clipped value passes no gradient back."""
    return torch.arccos(cosine.clamp(-1.0 + COSINE_CLIP, 1.0 - COSINE_CLIP))


def amc_pair_losses(distance: torch.Tensor, same_class: torch.Tensor, margin: float) -> torch.Tensor:
    """Per-pair AMC loss: squared distance for same-class pairs, squared hinge below the margin otherwise."""
    return torch.where(same_class, distance.square(), (margin - distance).clamp(min=0.0).square())


def official_rampup(step: int, total_steps: int) -> float:
    """The official script's weight factor w at optimizer step ``step`` (from 1) of ``total_steps``,
    with the run standing for its 200 epochs: 0 in epoch 0, 100 exp(-5 (1 - e/50)^2) until epoch 50,
    then 100."""
    epoch = math.floor(OFFICIAL_EPOCHS * (max(step, 1) - 1) / total_steps)
    if epoch == 0:
        return 0.0
    if epoch < OFFICIAL_RAMPUP_EPOCHS:
        return OFFICIAL_WEIGHT_MAX * math.exp(-5.0 * (1.0 - epoch / OFFICIAL_RAMPUP_EPOCHS) ** 2)
    return OFFICIAL_WEIGHT_MAX


@register
class AMCHead(CrossEntropyPlusHead):
    name = "amc"
    Params = AMCParams
    scheduled = True
    added_state = ("step", "planned_steps")  # runs saved before the ramp-up existed have no counter

    def term_weight(self) -> float:
        self.advance()
        if self.params.weight_schedule == "constant":
            return self.params.weight
        return self.params.weight * official_rampup(int(self.step), int(self.planned_steps))

    def feature_term(self, features: Tensor, labels: Tensor, logits: Tensor) -> Terms:
        pair_labels = logits.detach().argmax(dim=1) if self.params.pair_labels == "prediction" else labels
        unit = normalize(features)
        if self.params.pairing == "half":
            half = len(labels) // 2
            cosine = (unit[:half] * unit[half : 2 * half]).sum(dim=1)
            same_class = pair_labels[:half] == pair_labels[half : 2 * half]
        else:
            off_diagonal = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
            cosine = (unit @ unit.T)[off_diagonal]
            same_class = (pair_labels.unsqueeze(1) == pair_labels.unsqueeze(0))[off_diagonal]
        if cosine.numel() == 0:
            return features.new_zeros(()), {}
        pair_losses = amc_pair_losses(geodesic_distance(cosine), same_class, self.params.margin)
        return pair_losses.mean(), {}
