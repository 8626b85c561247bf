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
warning says so). Like L-Softmax it has no bias, so 2-D heads classify by angle alone (see
``losses.lsoftmax``). Measurements: bench/RESULTS.md, quality.

Paper: Liu, Wen, Yu, Li, Raj, Song, "SphereFace: Deep Hypersphere Embedding for Face Recognition",
CVPR 2017, https://arxiv.org/abs/1704.08063
"""

from __future__ import annotations

from losses.base import with_defaults
from losses.lsoftmax import LSoftmaxHead
from losses.registry import register


@register
class SphereFaceHead(LSoftmaxHead):
    """L-Softmax with unit-length class weights and the official SphereFace-20 schedule."""

    name = "sphereface"
    Params = with_defaults(LSoftmaxHead.Params, "SphereFaceParams", margin=4, gamma=3360.0, power=1.0, lambda_min=5.0)
    normalize_weights = True
