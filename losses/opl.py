"""Orthogonal Projection Loss (OPL): cross-entropy plus a term that makes classes orthogonal.

    z_i = f_i / ||f_i||,    c_ij = z_i . z_j   (cosine similarity)
    s = mean of c_ij over pairs i != j with y_i == y_j        (same class, diagonal excluded)
    d = mean of |c_ij| over pairs with y_i != y_j             (different classes)
    L = CE(W f + b, y) + lambda * [ (1 - s) + gamma * d ]

Both means divide by (pair count + 1e-6), as in the official code, so a batch without same-class
pairs has s = 0 and one without different-class pairs has d = 0. ``neg_abs`` selects where the
absolute value goes: ``elementwise`` (mean of |c|, every task script of the official code and the
default), ``of_mean`` (|mean of c|) or ``none`` (the plug-in ``loss.py``). The three agree when all
features are non-negative, as in the paper's post-ReLU backbones, and differ sharply here, where
features can point anywhere.

With fewer feature dimensions than classes the orthogonality part cannot reach 0: only D directions
can be mutually perpendicular in D dimensions, and with the elementwise |cos| a direction and its
opposite count as parallel, so classes crowd along D perpendicular lines (the feasibility warning
says so). Measured accuracies and angles: bench/RESULTS.md, quality.

Paper: Ranasinghe, Naseer, Hayat, Khan, Khan, "Orthogonal Projection Loss", ICCV 2021,
https://arxiv.org/abs/2103.14021
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from losses.base import CrossEntropyPlusHead, Terms, hparam, normalize
from losses.registry import register

COUNT_EPS = 1e-6


@dataclasses.dataclass(frozen=True)
class OPLParams:
    weight: float = hparam(1.0, "lambda: weight of the OPL term added to cross-entropy", low=0.0, high=100.0)
    gamma: float = hparam(
        0.5, "weight of the different-class (orthogonality) part against the same-class part", low=0.0, high=10.0
    )
    neg_abs: str = hparam(
        "elementwise",
        "absolute value of different-class cosines: elementwise (official scripts), of_mean, or none (plug-in loss.py)",
        choices=("elementwise", "of_mean", "none"),
    )


def opl_parts(features: torch.Tensor, labels: torch.Tensor, neg_abs: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean same-class cosine s (diagonal excluded) and mean different-class cosine d under ``neg_abs``."""
    unit = normalize(features)
    cosine = unit @ unit.T
    same_class = labels.unsqueeze(1) == labels.unsqueeze(0)
    positive = same_class & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    negative = ~same_class
    same_mean = (cosine * positive).sum() / (positive.sum() + COUNT_EPS)
    negative_cosine = cosine.abs() if neg_abs == "elementwise" else cosine
    diff_mean = (negative_cosine * negative).sum() / (negative.sum() + COUNT_EPS)
    if neg_abs == "of_mean":
        diff_mean = diff_mean.abs()
    return same_mean, diff_mean


@register
class OPLHead(CrossEntropyPlusHead):
    name = "opl"
    Params = OPLParams

    def feature_term(self, features: Tensor, labels: Tensor, logits: Tensor) -> Terms:
        same_mean, diff_mean = opl_parts(features, labels, self.params.neg_abs)
        value = (1.0 - same_mean) + self.params.gamma * diff_mean
        return value, {"opl_same_cos": same_mean, "opl_diff_cos": diff_mean}

    @classmethod
    def feasibility_warnings(cls, params: OPLParams, feat_dim: int, n_classes: int) -> list[str]:
        if feat_dim >= n_classes or params.weight == 0 or params.gamma == 0 or params.neg_abs != "elementwise":
            return []
        return [
            f"OPL wants every class orthogonal to every other, which needs at least {n_classes} feature "
            f"dimensions; with {feat_dim} it cannot be met. The orthogonality term stays above zero and "
            f"pushes the classes into a few clumps along {feat_dim} perpendicular lines through the origin "
            "(a direction and its opposite count as parallel); cross-entropy keeps the classes within a "
            "clump apart. Expect uneven spacing, not evenly spread classes"
            + (", and possibly lower accuracy than softmax." if feat_dim == 2 else ".")
        ]
