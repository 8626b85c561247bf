"""CosFace / AM-Softmax: scaled cosine logits minus a margin on the target and the 2-D feasibility
warning (losses-spec.md section 5.3; anchors.md section 6). What CosFace shares with ArcFace (the
zero-margin limit, inference logits, the margin warm-up) is tested in test_normalised_margins.py."""

from __future__ import annotations

from functools import partial

import pytest
import torch

import losses
from losses.cosface import CosFaceHead
from tests.losses import formulas

cosface_head = partial(formulas.seeded_head, "cosface", head_type=CosFaceHead)


def reference_loss(features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, m: float, s: float) -> float:
    """The paper's formula: s (cos theta_j - m [j = y])."""

    def logit(f: list[float], w: list[float], target: bool) -> float:
        return s * (formulas.cosine(f, w) - (m if target else 0.0))

    return formulas.reference_cross_entropy(features, labels, weight, logit)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("m", "s"), [(0.1, 16.0), (0.35, 64.0), (0.7, 3.0)])
def test_loss_matches_the_formula_on_features_at_known_angles(m: float, s: float, dtype: torch.dtype) -> None:
    head = cosface_head(n_classes=6, margin=m, scale=s, warmup=0.0).to(dtype)
    features = formulas.features_at_angles(range(0, 360, 7), dtype=dtype)
    loss, terms, expected = formulas.loss_and_reference(head, features, reference_loss, m, s)
    assert loss.item() == pytest.approx(expected, rel=1e-5 if dtype == torch.float32 else 1e-10)
    assert terms["margin"].item() == pytest.approx(m)


def test_gradients_match_finite_differences() -> None:
    head = cosface_head(feat_dim=3, margin=0.2, scale=5.0, warmup=0.0).double()
    features = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    weight = head.classifier.weight.detach().double().clone()
    assert formulas.gradcheck_features_and_weight(head, features, weight, torch.tensor([0, 1, 2, 3, 0, 1]))


def test_feasibility_warnings_flag_the_paper_margin_in_2d_but_not_the_defaults() -> None:
    paper = losses.warnings_for("cosface", 2, 10, {"margin": 0.35, "scale": 64.0})
    assert len(paper) == 1 and "cannot be met" in paper[0] and "0.191" in paper[0]
    assert losses.warnings_for("cosface", 3, 10, {"margin": 0.35, "scale": 64.0}) == []
    assert "cannot be met" in losses.warnings_for("cosface", 3, 10, {"margin": 0.6})[0], "1 - cos 66.15° = 0.596"
    for dim in (2, 3, 16):
        assert losses.warnings_for("cosface", dim, 10) == []
