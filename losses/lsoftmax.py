"""Large-Margin Softmax (L-Softmax): softmax without bias whose target class must win by m times the angle.

    z_j = W_j.f = |W_j||f| cos theta_j                                  (other classes; no bias)
    z_y = (lambda |W_y||f| cos theta_y + |W_y||f| psi(theta_y)) / (1 + lambda)
    psi(theta) = (-1)^k cos(m theta) - 2k   for theta in [k pi/m, (k+1) pi/m],  k = 0..m-1
    L = CE(z, y);    inference logits: the plain W f, never psi.

cos(m theta) is the Chebyshev polynomial T_m(cos theta), so no arccos enters the gradient; k is
computed without gradient. psi falls monotonically from 1 at theta = 0 to 1 - 2m at pi, and m = 1
is plain softmax without bias. With K classes at best spacing alpha (``losses.geometry``) a sample
beats its nearest rival with the margin only if m theta_y < alpha - theta_y, i.e. within alpha/(m+1)
of its own weight vector: 12 degrees for 10 classes in 2-D with m = 2, 7.2 degrees with m = 4.

Lambda annealing (paper section 5.1, official Caffe layer): the target starts as almost the plain
logit and the margin is brought in gradually,

    lambda_t = max(lambda_min, base * (1 + gamma * t / T) ** (-power)),    t = 1, 2, ..., T

where T is the run's planned number of optimiser steps and t is incremented before use. Unlike the
official layer, ``gamma`` is a rate per *whole run*, not per iteration, so the schedule keeps its
shape whatever the run length: the official per-iteration gamma times the official run length gives
the value here (MNIST: 2.5e-5 x 30,000 iterations = 0.75). Lambda passes 1 at t/T = (base^(1/power)
- 1) / gamma. ``base = 0`` turns the mixing off (lambda = lambda_min from the first step).

Defaults: m = 2, lambda falling from 1000 to 1 by 40% of the run (gamma = 0.55, power 35, the
official shape) and lambda_min = 1, so the second half of the run trains on half plain logit, half
psi. The paper's m = 4 asks 2-D features to sit within 7.2 degrees of their class, which a small CNN
trained for a few epochs does not manage (the feasibility warning says so); m = 2 with this floor
leaves about 14 degrees. The pure m = 2 (lambda_min = 0) draws thinner rays but cost accuracy on
Fashion-MNIST. Without a bias a 2-D classifier can only use the feature's angle, which costs
accuracy on data whose classes overlap in angle (the feasibility warning says so); the quality
benchmark's ``softmax-no-bias`` row (m = 1, base = 0) separates that cost from the margin's.
Measurements: bench/RESULTS.md, quality.

Paper: Liu, Wen, Yu, Yang, "Large-Margin Softmax Loss for Convolutional Neural Networks", ICML 2016,
https://arxiv.org/abs/1612.02295
"""

from __future__ import annotations

from losses._angular import MultiplicativeMarginHead, MultiplicativeMarginParams
from losses.base import with_defaults
from losses.registry import register


@register
class LSoftmaxHead(MultiplicativeMarginHead):
    name = "lsoftmax"
    Params = with_defaults(
        MultiplicativeMarginParams, "LSoftmaxParams", margin=2, gamma=0.55, power=35.0, lambda_min=1.0
    )
    normalize_weights = False
