"""ArcFace: the additive angular margin, its monotone fallback beyond pi - m, finite gradients at
cos = +-1, and the 2-D feasibility warning (losses-spec.md section 5.4; anchors.md section 6)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import losses
from losses._angular import arc_margin_cosine
from losses.arcface import ArcFaceHead


def arcface_head(feat_dim: int = 2, n_classes: int = 4, seed: int = 0, **hparams: object) -> ArcFaceHead:
    torch.manual_seed(seed)
    head = losses.build("arcface", feat_dim, n_classes, **hparams)
    assert isinstance(head, ArcFaceHead)
    return head


def features_at_angles(degrees: list[float], norm: float = 10.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    radians = torch.tensor(degrees, dtype=torch.float64).deg2rad()
    return (norm * torch.stack([radians.cos(), radians.sin()], dim=1)).to(dtype)


def reference_loss(features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, m: float, s: float) -> float:
    """The paper's formula with math.acos: s cos(theta_y + m), or s (cos theta_y - m sin m) past pi - m."""
    total = 0.0
    for f, y in zip(features.tolist(), labels.tolist(), strict=True):
        logits = []
        for j, w in enumerate(weight.tolist()):
            cosine = sum(a * b for a, b in zip(f, w, strict=True)) / (math.hypot(*f) * math.hypot(*w))
            if j == y:
                theta = math.acos(max(-1.0, min(1.0, cosine)))
                cosine = math.cos(theta + m) if theta <= math.pi - m else cosine - m * math.sin(m)
            logits.append(s * cosine)
        top = max(logits)
        total += top + math.log(sum(math.exp(z - top) for z in logits)) - logits[y]
    return total / len(labels)


def test_zero_margin_is_normalised_softmax_scaled_by_s_in_value_and_gradients() -> None:
    head = arcface_head(feat_dim=3, n_classes=5, margin=0.0, scale=12.0)
    features = torch.randn(11, 3, generator=torch.Generator().manual_seed(1)).requires_grad_()
    labels = torch.arange(11) % 5
    loss, _ = head(features, labels)
    loss.backward()
    got = (features.grad.clone(), head.classifier.weight.grad.clone())
    features.grad = None
    weight = head.classifier.weight.detach().clone().requires_grad_()
    expected = F.cross_entropy(12.0 * F.normalize(features, dim=1) @ F.normalize(weight, dim=1).T, labels)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    assert torch.allclose(got[0], features.grad, atol=1e-5)
    assert torch.allclose(got[1], weight.grad, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("m", "s"), [(0.2, 16.0), (0.5, 64.0), (1.2, 4.0)])
def test_loss_matches_the_formula_on_features_at_known_angles(m: float, s: float, dtype: torch.dtype) -> None:
    head = arcface_head(n_classes=6, margin=m, scale=s, warmup=0.0).to(dtype)
    features = features_at_angles(list(range(0, 360, 7)), dtype=dtype)
    labels = torch.arange(len(features)) % 6
    loss, _ = head(features, labels)
    expected = reference_loss(features.double(), labels, head.classifier.weight.detach().double(), m, s)
    assert loss.item() == pytest.approx(expected, rel=1e-5 if dtype == torch.float32 else 1e-9)


def test_target_cosine_is_cos_of_theta_plus_m_then_the_monotone_fallback() -> None:
    m = 0.5
    theta = torch.linspace(0, math.pi, 10001, dtype=torch.float64)
    target = arc_margin_cosine(theta.cos(), m)
    inside = theta <= math.pi - m
    assert torch.allclose(target[inside], torch.cos(theta[inside] + m), atol=1e-9)
    assert torch.allclose(target[~inside], theta[~inside].cos() - m * math.sin(m), atol=1e-12)
    assert target.diff().max() <= 1e-12, "the target cosine must not rise again past pi - m"
    assert target[~inside].max() < -1.0, "the fallback continues below cos(pi) = -1 (a step down, as in insightface)"


def test_features_on_and_opposite_their_class_give_finite_loss_and_gradients() -> None:
    head = arcface_head(margin=0.5, scale=64.0, warmup=0.0)
    weight = head.classifier.weight.detach()
    features = torch.cat([weight[:2] * 3.0, -weight[2:] * 0.5]).requires_grad_()
    labels = torch.arange(4)
    loss, _ = head(features, labels)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(features.grad).all() and torch.isfinite(head.classifier.weight.grad).all()
    on_class = arc_margin_cosine(torch.tensor([1.0, -1.0], requires_grad=True), 0.5)
    on_class.sum().backward()
    assert torch.allclose(on_class.detach(), torch.tensor([math.cos(0.5), -1 - 0.5 * math.sin(0.5)]))


def test_gradients_match_finite_differences_away_from_the_fallback_switch() -> None:
    head = arcface_head(margin=0.4, scale=6.0, warmup=0.0).double()
    weight = features_at_angles([10.0, 100.0, 200.0, 280.0], norm=1.3, dtype=torch.float64)
    # theta_y = 15, 30, 55, 105 and 170 degrees; the switch is at 180 - 22.9 = 157.1 degrees
    features = features_at_angles([25.0, 130.0, 255.0, 175.0, 30.0], norm=1.7, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 3, 2])

    def loss_of(f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(head, {"classifier.weight": w}, (f, labels))[0]

    assert torch.autograd.gradcheck(loss_of, (features.requires_grad_(), weight.requires_grad_()))


def test_inference_logits_are_scaled_cosines_without_margin() -> None:
    features = torch.randn(9, 2, generator=torch.Generator().manual_seed(3))
    head = arcface_head(margin=0.5, scale=20.0)
    head(features, torch.arange(9) % 4)
    cosine = F.normalize(features, dim=1) @ F.normalize(head.classifier.weight.detach(), dim=1).T
    assert torch.allclose(head.logits(features), 20.0 * cosine)


def test_feasibility_warnings_flag_the_paper_margin_in_2d_but_not_the_defaults() -> None:
    paper = losses.warnings_for("arcface", 2, 10, {"margin": 0.5, "scale": 64.0})
    assert len(paper) == 1 and "3.7°" in paper[0]
    impossible = losses.warnings_for("arcface", 2, 10, {"margin": 0.7})
    assert len(impossible) == 1 and "cannot be met" in impossible[0]
    assert losses.warnings_for("arcface", 3, 10, {"margin": 0.5, "scale": 64.0}) == [], "18.8° of room in 3-D"
    for dim in (2, 3, 16):
        assert losses.warnings_for("arcface", dim, 10) == []
