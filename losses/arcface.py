"""ArcFace (additive angular margin): the margin is added to the target angle itself.

    cos theta_j = (W_j / |W_j|) . (f / |f|)
    z_j = s cos theta_j   (j != y)
    z_y = s cos(theta_y + m)            if theta_y <= pi - m
        = s (cos theta_y - m sin m)     otherwise (keeps z_y decreasing in theta_y)
    L = CE(z, y);    inference logits: s cos theta_j, never the margin.

The margin m is in **radians** (0.25 rad = 14.3 degrees; PML's ``ArcFaceLoss`` takes degrees).
cos(theta + m) is computed as cos theta cos m - sin theta sin m with sin theta = sqrt(max(1 -
cos^2 theta, 1e-12)), so no arccos is needed and the gradient stays finite at cos theta = +-1.
With K classes at the best spacing alpha (``losses.geometry``) a sample theta from its class meets
the margin against a rival only if theta + m < alpha - theta, i.e. within (alpha - m)/2 of its class
direction; m >= alpha is impossible. For 10 classes in 2-D (alpha = 36 degrees) the paper's m = 0.5
rad = 28.6 degrees leaves 3.7 degrees; in 3-D (alpha = 66.1 degrees) it leaves 18.8 degrees.

``warmup`` > 0 ramps the margin linearly from 0 to m over that fraction of the run's planned steps
(the step counter is saved with the run); 0 applies the full margin from the first step.

Defaults: m = 0.25 rad (14.3 degrees), s = 4 and a warm-up over half the run, instead of the
paper's m = 0.5 and s = 64. With 10 classes in 2-D the margin leaves samples a 10.8-degree cone
around their class direction. As for CosFace (see ``losses.cosface``), a large s is what breaks
2-D heads, and the defaults clip the gradient norm of each step to 1 (``grad_clip``) for the reason
given there. Measurements: bench/RESULTS.md, quality.

Paper: Deng, Guo, Xue, Zafeiriou, "ArcFace: Additive Angular Margin Loss for Deep Face
Recognition", CVPR 2019, https://arxiv.org/abs/1801.07698
"""

from __future__ import annotations

import dataclasses
import math

import torch

from losses._angular import TIGHT_CONE_DEGREES, AdditiveMarginHead, AdditiveMarginParams, arc_margin_cosine, floor_to
from losses.base import hparam
from losses.registry import register


@dataclasses.dataclass(frozen=True)
class ArcFaceParams(AdditiveMarginParams):
    margin: float = hparam(0.25, "m in radians, added to the target angle (0.25 rad = 14.3°)", low=0.0, high=1.5)


@register
class ArcFaceHead(AdditiveMarginHead):
    name = "arcface"
    Params = ArcFaceParams

    def target_cosine(self, cosine: torch.Tensor, margin: float) -> torch.Tensor:
        return arc_margin_cosine(cosine, margin)

    @classmethod
    def cone_degrees(cls, params: ArcFaceParams, spacing: float) -> float:
        # theta from the class and spacing - theta from a rival meet the margin while theta + m < spacing - theta
        return (spacing - math.degrees(params.margin)) / 2

    @classmethod
    def margin_advice(cls, params: ArcFaceParams, spacing: float) -> str:
        advice = f"It must stay below the spacing, {math.radians(spacing):.3f} rad"
        roomy = floor_to(math.radians(spacing - 2 * TIGHT_CONE_DEGREES))
        return advice + (f"; margin {roomy:g} rad or less leaves {TIGHT_CONE_DEGREES:g}°." if roomy > 0 else ".")
