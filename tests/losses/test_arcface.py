"""ArcFace: the additive angular margin, its monotone fallback beyond pi - m, finite gradients at
cos = +-1, and the 2-D feasibility warning (losses-spec.md section 5.4; anchors.md section 6). What
ArcFace shares with CosFace (the zero-margin limit, inference logits, the margin warm-up) is tested
in test_normalised_margins.py."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

import losses
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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("m", "s"), [(0.2, 16.0), (0.5, 64.0), (1.2, 4.0)])
def test_loss_matches_the_formula_on_features_at_known_angles(m: float, s: float, dtype: torch.dtype) -> None:
    head = arcface_head(n_classes=6, margin=m, scale=s, warmup=0.0).to(dtype)
    features = formulas.features_at_angles(range(0, 360, 7), dtype=dtype)
    loss, terms, expected = formulas.loss_and_reference(head, features, reference_loss, m, s)
    assert loss.item() == pytest.approx(expected, rel=1e-5 if dtype == torch.float32 else 1e-9)
    assert terms["margin"].item() == pytest.approx(m)


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
    weight = formulas.features_at_angles([10.0, 100.0, 200.0, 280.0], norm=1.3, dtype=torch.float64)
    # theta_y = 15, 30, 55, 105 and 170 degrees; the switch is at 180 - 22.9 = 157.1 degrees
    features = formulas.features_at_angles([25.0, 130.0, 255.0, 175.0, 30.0], norm=1.7, dtype=torch.float64)
    assert formulas.gradcheck_features_and_weight(head, features, weight, torch.tensor([0, 1, 2, 3, 2]))


def test_feasibility_warnings_flag_the_paper_margin_in_2d_but_not_the_defaults() -> None:
    paper = losses.warnings_for("arcface", 2, 10, {"margin": 0.5, "scale": 64.0})
    assert len(paper) == 1 and "3.7°" in paper[0]
    impossible = losses.warnings_for("arcface", 2, 10, {"margin": 0.7})
    assert len(impossible) == 1 and "cannot be met" in impossible[0]
    assert losses.warnings_for("arcface", 3, 10, {"margin": 0.5, "scale": 64.0}) == [], "18.8° of room in 3-D"
    for dim in (2, 3, 16):
        assert losses.warnings_for("arcface", dim, 10) == []
