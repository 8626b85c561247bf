"""ArcFace: the reference formula, the additive angular margin's monotone fallback beyond pi - m,
finite gradients at cos = +-1, and the 2-D feasibility warning (losses-spec.md section 5.4;
anchors.md section 6). The formula is checked, with what ArcFace shares with CosFace, in
test_additive_margins.py."""

from __future__ import annotations

import math
from functools import partial

import torch

from losses._angular import arc_margin_cosine
from losses.arcface import ArcFaceHead
from tests.losses import formulas

arcface_head = partial(formulas.seeded_head, "arcface", head_type=ArcFaceHead)


def reference_loss(features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, m: float, s: float) -> float:
    """The paper's formula with math.acos: s cos(theta_y + m), or s (cos theta_y - m sin m) past pi - m."""

    def logit(f: list[float], w: list[float], target: bool) -> float:
        if not target:
            return s * formulas.cosine(f, w)
        theta = formulas.angle(f, w)
        return s * (math.cos(theta + m) if theta <= math.pi - m else formulas.cosine(f, w) - m * math.sin(m))

    return formulas.reference_cross_entropy(features, labels, weight, logit)


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


def test_feasibility_warnings_flag_the_paper_margin_in_2d_but_not_the_defaults() -> None:
    paper = formulas.margin_warnings("arcface", 2, margin=0.5, scale=64.0)
    assert len(paper) == 1 and "3.7°" in paper[0]
    impossible = formulas.margin_warnings("arcface", 2, margin=0.7)
    assert len(impossible) == 1 and "cannot be met" in impossible[0]
    assert formulas.margin_warnings("arcface", 3, margin=0.5, scale=64.0) == [], "18.8° of room in 3-D"
    for dim in (2, 3, 16):
        assert formulas.margin_warnings("arcface", dim) == []
