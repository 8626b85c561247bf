"""SphereFace (A-Softmax): normalized weights, psi on the target (the reference formula, checked in
test_multiplicative_margins.py), |f| cos inference logits, and the official lambda schedule
expressed per run (losses-spec.md section 5.2)."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from losses._angular import annealed_lambda
from losses.sphereface import SphereFaceHead
from tests.losses import formulas

sphereface_head = partial(formulas.seeded_head, "sphereface", head_type=SphereFaceHead)


def reference_loss(features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, m: int, lam: float) -> float:
    """The formula sample by sample: unit weights, |f| cos theta logits, |f| psi(theta_y) mixed by lambda."""

    def logit(f: list[float], w: list[float], target: bool) -> float:
        norm = math.hypot(*f)
        if not target:
            return norm * formulas.cosine(f, w)
        return norm * (lam * formulas.cosine(f, w) + formulas.psi_by_hand(formulas.angle(f, w), m)) / (1 + lam)

    return formulas.reference_cross_entropy(features, labels, weight, logit)


def test_margin_one_is_cross_entropy_on_norm_times_cosine_logits() -> None:
    head = sphereface_head(feat_dim=3, n_classes=5, margin=1)
    head.train()
    formulas.assert_cross_entropy_in_value_and_gradients(
        head, lambda f, w: f.norm(dim=1, keepdim=True) * (F.normalize(f, dim=1) @ F.normalize(w, dim=1).T)
    )


def test_weight_length_does_not_matter() -> None:
    features = torch.randn(10, 2, generator=torch.Generator().manual_seed(2))
    labels = torch.arange(10) % 4
    head = sphereface_head()
    before = head(features, labels)[0]
    with torch.no_grad():
        head.classifier.weight.mul_(torch.tensor([[3.0], [0.2], [1.0], [7.0]]))
    head.step.zero_()
    assert torch.allclose(head(features, labels)[0], before)


def test_inference_logits_are_norm_times_cosine_without_margin() -> None:
    features = torch.randn(9, 2, generator=torch.Generator().manual_seed(3))
    head = sphereface_head(margin=4)
    head.train()
    head(features, torch.arange(9) % 4)
    unit_weights = F.normalize(head.classifier.weight.detach(), dim=1)
    assert torch.allclose(head.logits(features), features @ unit_weights.T)
    assert torch.allclose(head.class_directions().norm(dim=1), torch.ones(4))


def test_gradients_match_finite_differences_away_from_interval_ends() -> None:
    head = sphereface_head(margin=4, base=0.0, lambda_min=1.0).double().eval()
    weight = formulas.features_at_angles([10.0, 100.0, 200.0, 280.0], norm=1.3, dtype=torch.float64)
    # theta_y = 15, 30, 55, 105, 165 degrees: all away from the ends k*45 of psi's pieces
    features = formulas.features_at_angles([25.0, 130.0, 255.0, 175.0, 5.0], norm=1.7, dtype=torch.float64)
    assert formulas.gradcheck_features_and_weight(head, features, weight, torch.tensor([0, 1, 2, 3, 2]))


def test_official_schedule_is_reproduced_over_its_run_length() -> None:
    """Official SphereFace-20: lambda = max(5, 1000 / (1 + 0.12 t)) over 28,000 iterations."""
    head = sphereface_head(base=1000.0, gamma=0.12 * 28_000, power=1.0, lambda_min=5.0)
    head.plan(28_000)
    head.train()
    features, labels = torch.randn(4, 2), torch.arange(4)
    for t in range(1, 4):
        lam = max(5.0, 1000.0 / (1 + 0.12 * t))
        assert head(features, labels)[1]["softmax_share"].item() == pytest.approx(lam / (1 + lam), rel=1e-6)
    official = {"base": 1000.0, "gamma": SphereFaceHead.Params().gamma, "power": 1.0, "lambda_min": 5.0}
    assert annealed_lambda(1657 / 28_000, **official) > 5.0 == annealed_lambda(1659 / 28_000, **official)


def test_feasibility_warnings_flag_pure_a_softmax_in_2d_but_not_the_official_floor() -> None:
    pure = formulas.margin_warnings("sphereface", 2, margin=4, lambda_min=0.0)
    assert len(pure) == 1 and "within 7.9°" in pure[0], "lambda ends at 1000/3361 = 0.3 with the default decay"
    assert "within 7.2°" in formulas.margin_warnings("sphereface", 2, margin=4, base=0.0, lambda_min=0.0)[0]
    for dim in (2, 3, 16):
        assert formulas.margin_warnings("sphereface", dim) == []
