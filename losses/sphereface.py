"""SphereFace (A-Softmax): L-Softmax with unit-length class weights, so only angles separate classes.

    w_j = W_j / |W_j|,    cos theta_j = w_j.f / |f|
    z_j = |f| cos theta_j                                               (other classes; no bias)
    z_y = |f| (lambda cos theta_y + psi(theta_y)) / (1 + lambda)
    psi(theta) = (-1)^k cos(m theta) - 2k   for theta in [k pi/m, (k+1) pi/m],  k = 0..m-1
    L = CE(z, y);    inference logits: |f| cos theta_j, the plain w_j.f, never psi.

psi is the multiplicative angular margin of L-Softmax (``losses.lsoftmax``); normalising W removes
the class weight lengths, so the decision rule is purely angular. The feature norm |f| is left
free and acts as the logit scale. A sample meets the margin against a rival at the best spacing
alpha only within alpha/(m+1) of its class direction (7.2 degrees for 10 classes in 2-D at m = 4).

Lambda annealing as in the official SphereFace-20 prototxt (base 1000, gamma 0.12 per iteration,
power 1, lambda_min 5, for 28,000 iterations):

    lambda_t = max(lambda_min, base * (1 + gamma * t / T) ** (-power)),    t = 1, 2, ..., T

with T the run's planned number of optimiser steps and t incremented before use. ``gamma`` is a
rate per *whole run*: the official 0.12 x 28,000 = 3,360, which brings lambda to its floor of 5
after 6% of the run. ``base = 0`` turns the mixing off (lambda = lambda_min from the first step).

Defaults: the official ones (m = 4, base 1000, gamma 3,360 per run, power 1, lambda_min 5). The
floor of 5 keeps five parts plain cosine to one part psi in the target, which softens m = 4 to
about the margin of a pure m = 2: samples meet it within 12.7 degrees of their class direction for
10 classes in 2-D (24 degrees in 3-D). The pure A-Softmax of the paper (lambda_min = 0) asks for
under 8 degrees in 2-D, which a small CNN trained for a few epochs does not reach (the feasibility
warning says so). Measured (bench/RESULTS.md, quality, 3 seeds): digits 95.8% (2-D) and 99.5%
(3-D) against softmax's 95.6% and 98.5%; Fashion-MNIST 86.2% with a 3-D head (softmax 86.6%) but
76.5% with a 2-D head (softmax 82.5%; softmax without a bias 78.4%, see ``losses.lsoftmax``).

Paper: Liu, Wen, Yu, Li, Raj, Song, "SphereFace: Deep Hypersphere Embedding for Face Recognition",
CVPR 2017, https://arxiv.org/abs/1704.08063

What to look for in the plots: classes become narrow angular wedges around their (unit) class
directions, separated by empty angular gaps, and the classification depends only on direction, so
compare the raw and the normalised (circle/sphere) views. The feature norm grows with confidence,
as it is the only logit scale; the class directions spread out evenly round the circle or sphere.
"""

from __future__ import annotations

import dataclasses

from losses._angular import MultiplicativeMarginHead
from losses.base import hparam
from losses.registry import register


@dataclasses.dataclass(frozen=True)
class SphereFaceParams:
    margin: int = hparam(4, "m: the target angle is multiplied by m (1 = normalised-weight softmax)", low=1, high=6)
    base: float = hparam(
        1000.0, "lambda at the start of training; 0 turns the annealing off (lambda = lambda_min)", low=0.0, high=1e6
    )
    gamma: float = hparam(
        3360.0,
        "decay rate of lambda per whole run: lambda = max(lambda_min, base (1 + gamma t/T)^-power)",
        low=0.0,
        high=1e6,
    )
    power: float = hparam(1.0, "exponent of the lambda decay", low=0.0, high=1000.0)
    lambda_min: float = hparam(
        5.0, "floor of lambda; lower means a stronger margin (0: pure A-Softmax)", low=0.0, high=1e6
    )


@register
class SphereFaceHead(MultiplicativeMarginHead):
    name = "sphereface"
    summary = "Unit-length class weights, target angle multiplied by m (A-Softmax), with lambda annealing."
    paper = (
        "Liu, Wen, Yu, Li, Raj, Song, SphereFace: Deep Hypersphere Embedding for Face Recognition, CVPR 2017. "
        "https://arxiv.org/abs/1704.08063"
    )
    Params = SphereFaceParams
    normalise_weights = True
