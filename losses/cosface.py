"""CosFace (LMCL) / AM-Softmax: cosine logits with a margin subtracted from the target cosine.

    cos theta_j = (W_j / |W_j|) . (f / |f|)
    z_j = s cos theta_j   (j != y),      z_y = s (cos theta_y - m)
    L = CE(z, y);    inference logits: s cos theta_j, never the margin.

Features and class weights are both normalized, so every logit is a scaled cosine and the decision
rule is purely angular; the scale s sets how sharp the softmax is. The margin m is in cosine units.
With K classes at the best spacing alpha (``losses.geometry``) even a sample exactly on its class
direction needs 1 - m > cos alpha, so m < 1 - cos alpha: 0.191 for 10 classes in 2-D, 0.596 in 3-D.
The paper's m = 0.35 cannot be met in 2-D at all.

``warmup`` > 0 ramps the margin linearly from 0 to m over that fraction of the run's planned steps
(the step counter is saved with the run); 0 applies the full margin from the first step.

Defaults: m = 0.08, s = 4 and a warm-up over half the run, instead of the paper's m = 0.35 and
s = 64 (AM-Softmax: s = 30). 0.08 is the largest margin that leaves samples a 10-degree cone around
their class direction with 10 classes in 2-D. On 2-D heads the scale matters even more than the
margin: the gradient reaching the network grows as s/|f|, this app's BatchNorm features are about
unit length (a 512-D BatchNorm face embedding has |f| ~ 22), and on a circle classes can only
change places by passing through each other or through the origin, where a large s makes every
step violent; large scales failed to train 2-D heads on digits, s = 2-4 did. s = 4 is close to
AdaCos's fixed scale sqrt(2) ln(K - 1) = 3.1 for 10 classes. With s = 4 a sample lying on its class
direction gets at most about 40% probability in 2-D, so the loss stays near 1 even when every
sample is classified right: compare accuracies and pictures, not loss values.

The defaults also clip the gradient norm of each step to 1 (``grad_clip``; the trainer asks the
head through ``max_grad_norm``). Normalizing the features makes their gradient grow as 1/|f|, and
a sample near the origin of a 2-D head can throw the whole network around in one step; without
clipping, 2-D runs on digits were erratic from seed to seed, and no margin, scale or warm-up fixed
that. The training loss also floors the feature length it divides by (``losses.base.normalize``).
Like every head without a bias, a 2-D CosFace head classifies by angle alone (the feasibility
warning says so). Measurements: bench/RESULTS.md, quality.

Papers: Wang, Wang, Zhou, Ji, Gong, Zhou, Li, Liu, "CosFace: Large Margin Cosine Loss for Deep
Face Recognition", CVPR 2018, https://arxiv.org/abs/1801.09414; Wang, Cheng, Liu, Liu, "Additive
Margin Softmax for Face Verification", IEEE SPL 2018, https://arxiv.org/abs/1801.05599
"""

from __future__ import annotations

import dataclasses
import math

import torch

from losses._angular import TIGHT_CONE_DEGREES, AdditiveMarginHead, AdditiveMarginParams, floor_to
from losses.base import hparam
from losses.registry import register


@dataclasses.dataclass(frozen=True)
class CosFaceParams(AdditiveMarginParams):
    margin: float = hparam(0.08, "m: subtracted from the target cosine (cosine units)", low=0.0, high=1.0)


@register
class CosFaceHead(AdditiveMarginHead):
    name = "cosface"
    Params = CosFaceParams

    def target_cosine(self, cosine: torch.Tensor, margin: float) -> torch.Tensor:
        return cosine - margin

    @classmethod
    def cone_degrees(cls, params: CosFaceParams, spacing: float) -> float:
        # theta from the class and spacing - theta from a rival meet the margin while
        # cos theta - cos(spacing - theta) = 2 sin(spacing/2) sin(spacing/2 - theta) > m
        half = math.radians(spacing) / 2
        if params.margin >= 1 - math.cos(2 * half):
            return 0.0
        return math.degrees(half - math.asin(params.margin / (2 * math.sin(half))))

    @classmethod
    def margin_advice(cls, params: CosFaceParams, spacing: float) -> str:
        advice = f"It must stay below 1 − cos {spacing:.1f}° = {1 - math.cos(math.radians(spacing)):.3f}"
        half, room = math.radians(spacing) / 2, math.radians(TIGHT_CONE_DEGREES)
        roomy = floor_to(2 * math.sin(half) * math.sin(half - room)) if half > room else 0.0
        return advice + (f"; margin {roomy:g} or less leaves {TIGHT_CONE_DEGREES:g}°." if roomy > 0 else ".")
