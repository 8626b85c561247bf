"""Helpers shared by the loss tests: seeded heads, 2-D features at known angles, the checks the margin
heads share, and a pure-Python cross-entropy into which each test file plugs its loss's logit formula.

The references here and in the test files use only Python's ``math`` on lists of floats, never
``losses``, so that they stay independent of the code they check."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import losses

Vector = Sequence[float]
Logit = Callable[[Vector, Vector, bool], float]


def seeded_head(
    name: str,
    feat_dim: int = 2,
    n_classes: int = 4,
    seed: int = 0,
    *,
    head_type: type[losses.LossHead] = losses.LossHead,
    **hparams: object,
) -> Any:
    """``losses.build(name, ...)`` after ``torch.manual_seed(seed)``, checked to be a ``head_type``."""
    torch.manual_seed(seed)
    head = losses.build(name, feat_dim, n_classes, **hparams)
    assert isinstance(head, head_type), f"{name} built a {type(head).__name__}, not a {head_type.__name__}"
    return head


def features_at_angles(
    degrees: Sequence[float], norm: float = 10.0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """2-D features of length ``norm`` at the given angles (degrees from the x axis)."""
    radians = torch.tensor(list(degrees), dtype=torch.float64).deg2rad()
    return (norm * torch.stack([radians.cos(), radians.sin()], dim=1)).to(dtype)


def dot(f: Vector, w: Vector) -> float:
    return sum(a * b for a, b in zip(f, w, strict=True))


def cosine(f: Vector, w: Vector) -> float:
    """cos theta between a feature and a class weight, by hand."""
    return dot(f, w) / (math.hypot(*f) * math.hypot(*w))


def angle(f: Vector, w: Vector) -> float:
    """theta in [0, pi] between a feature and a class weight, with math.acos of the clipped cosine."""
    return math.acos(max(-1.0, min(1.0, cosine(f, w))))


def psi_by_hand(theta: float, m: int) -> float:
    """The multiplicative margin's psi(theta) = (-1)^k cos(m theta) - 2k on [k pi/m, (k+1) pi/m], with
    math.cos(m theta) (no Chebyshev polynomial)."""
    k = min(math.floor(theta * m / math.pi), m - 1)
    return (-1) ** k * math.cos(m * theta) - 2 * k


def reference_cross_entropy(features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, logit: Logit) -> float:
    """Mean cross-entropy, sample by sample in pure Python, of the logits ``logit(f, w, j == y)`` of
    each feature f with label y against each class weight w_j (a log-sum-exp shifted by the top logit)."""
    total = 0.0
    rows = weight.tolist()
    for f, y in zip(features.tolist(), labels.tolist(), strict=True):
        logits = [logit(f, w, j == y) for j, w in enumerate(rows)]
        top = max(logits)
        total += top + math.log(sum(math.exp(z - top) for z in logits)) - logits[y]
    return total / len(labels)


def loss_and_reference(
    head: losses.LossHead, features: torch.Tensor, reference: Callable[..., float], *formula: object
) -> tuple[torch.Tensor, dict[str, torch.Tensor], float]:
    """The head's loss and terms on ``features`` labelled 0, 1, ..., K - 1, 0, 1, ..., and
    ``reference(features, labels, weight, *formula)`` for the same batch in float64."""
    labels = torch.arange(len(features)) % head.n_classes
    loss, terms = head(features, labels)
    expected = reference(features.double(), labels, head.classifier.weight.detach().double(), *formula)
    return loss, terms, expected


def assert_cross_entropy_in_value_and_gradients(
    head: losses.LossHead,
    expected_logits: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    grad_atol: float = 1e-6,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """On 11 random features with labels 0, 1, ..., the head's loss equals F.cross_entropy of
    ``expected_logits(features, classifier_weight)`` (to 1e-6), and so do the gradients reaching the
    features and the classifier weight (to ``grad_atol``). Returns the head's loss and terms."""
    features = torch.randn(11, head.feat_dim, generator=torch.Generator().manual_seed(1)).requires_grad_()
    labels = torch.arange(11) % head.n_classes
    loss, terms = head(features, labels)
    loss.backward()
    got = (features.grad.clone(), head.classifier.weight.grad.clone())
    features.grad = None
    weight = head.classifier.weight.detach().clone().requires_grad_()
    expected = F.cross_entropy(expected_logits(features, weight), labels)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6), f"loss {loss.item()} != {expected.item()}"
    feature_gap, weight_gap = (got[0] - features.grad).abs().max(), (got[1] - weight.grad).abs().max()
    assert torch.allclose(got[0], features.grad, atol=grad_atol), f"feature gradients differ by {feature_gap}"
    assert torch.allclose(got[1], weight.grad, atol=grad_atol), f"weight gradients differ by {weight_gap}"
    return loss, terms


def gradcheck_features_and_weight(
    head: losses.LossHead, features: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor
) -> bool:
    """torch.autograd.gradcheck of the head's loss as a function of the features and the classifier
    weight (pass float64 tensors and a float64 head)."""

    def loss_of(f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(head, {"classifier.weight": w}, (f, labels))[0]

    return torch.autograd.gradcheck(loss_of, (features.requires_grad_(), weight.requires_grad_()))


def term_of(
    head: losses.LossHead, features: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The feature term of a cross-entropy-plus head on ``features``, with the head's own logits."""
    return head.feature_term(features, labels, head.classifier(features))


def margin_warnings(name: str, dim: int, n_classes: int = 10, **hparams: object) -> list[str]:
    """The margin's own feasibility warnings of a margin head (without the 2-D no-bias warning)."""
    return losses.get(name).margin_warnings(losses.make_params(name, hparams), dim, n_classes)
