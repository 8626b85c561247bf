"""CosFace / AM-Softmax: the reference formula (scaled cosine logits minus a margin on the target)
and the 2-D feasibility warning (losses-spec.md section 5.3; anchors.md section 6). The formula is
checked, with what CosFace shares with ArcFace, in test_additive_margins.py."""

from __future__ import annotations

import torch

from tests.losses import formulas


def reference_loss(features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, m: float, s: float) -> float:
    """The paper's formula: s (cos theta_j - m [j = y])."""

    def logit(f: list[float], w: list[float], target: bool) -> float:
        return s * (formulas.cosine(f, w) - (m if target else 0.0))

    return formulas.reference_cross_entropy(features, labels, weight, logit)


def test_feasibility_warnings_flag_the_paper_margin_in_2d_but_not_the_defaults() -> None:
    paper = formulas.margin_warnings("cosface", 2, margin=0.35, scale=64.0)
    assert len(paper) == 1 and "cannot be met" in paper[0] and "0.191" in paper[0]
    assert formulas.margin_warnings("cosface", 3, margin=0.35, scale=64.0) == []
    assert "cannot be met" in formulas.margin_warnings("cosface", 3, margin=0.6)[0], "1 - cos 66.15° = 0.596"
    for dim in (2, 3, 16):
        assert formulas.margin_warnings("cosface", dim) == []
