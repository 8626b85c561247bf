"""ROAD, remove and debias (Rong et al., A Consistent and Efficient Evaluation Strategy for Attribution
Methods, ICML 2022), with pytorch-grad-cam's conventions, for a whole batch at once. No UI.

pytorch-grad-cam's ``NoisyLinearImputer`` builds and solves one sparse system per image, percentile, order and
map, which dominates scoring a run (bench/interpret.py). :func:`impute` solves the same system for every image of
a batch together by conjugate gradients, on tensors; the tests check it against the library's classes.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_grad_cam.metrics.road import neighbors_weights
from torch import nn

from lab.interpret.metrics import BATCH_SIZE, check_inputs, evaluating, model_device, target_probability
from lab.progress import Progress

logger = logging.getLogger(__name__)

ROAD_PERCENTILES = (20, 40, 60, 80)
ROAD_NOISE = 0.01  # NoisyLinearImputer's default
SIDE_WEIGHT, CORNER_WEIGHT = (dict(neighbors_weights)[offset] for offset in ((0, 1), (1, 1)))
IMPUTE_VALUES = 2**21  # pixel values imputed together: few large tensor operations, 8 MB each
CG_TOLERANCE = 3e-4  # relative residual: each imputed value within about 0.002 of the exact solve; ROAD adds 0.01 noise


def _laplacian(v: torch.Tensor, degree: torch.Tensor) -> torch.Tensor:
    """``degree * v`` minus the sum of each pixel's 8 neighbours weighted by pytorch-grad-cam's
    ``neighbors_weights`` (1/6 for the 4 sides, 1/12 for the corners; outside the image counts as 0), for
    B x 1 x H x W. Slices, not a 3x3 convolution: oneDNN runs a one-channel convolution about 3 times
    slower than these sums."""
    p = F.pad(v, (1, 1, 1, 1))
    columns = p[..., :-2, :] + p[..., 2:, :]  # the pixels above and below, on the padded width
    corners = columns[..., :-2] + columns[..., 2:]
    sides = columns[..., 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]
    return corners.mul_(-CORNER_WEIGHT).add_(sides, alpha=-SIDE_WEIGHT).addcmul_(degree, v)


def impute(
    images: torch.Tensor,
    keep: torch.Tensor,
    *,
    noise: float = ROAD_NOISE,
    generator: torch.Generator | None = None,
    tolerance: float = CG_TOLERANCE,
) -> torch.Tensor:
    """ROAD's noisy linear imputation for a batch: ``images`` (B x C x H x W) with the pixels where
    ``keep`` (B x H x W, bool) is False replaced.

    Each missing pixel becomes the weighted mean of its 8 neighbours (pytorch-grad-cam's
    ``neighbors_weights``; neighbours outside the image drop out), known neighbours fixed: the linear
    system of the library's ``NoisyLinearImputer``, solved here by conjugate gradients for all images and
    channels at once (the system is symmetric positive definite), then ``noise`` times standard normal
    noise is added to each imputed value, as the library does. Systems that have converged leave the
    batch: on CAM masks the slowest needs about twice the median's iterations.
    """
    b, c, h, w = images.shape
    x = images.reshape(b * c, 1, h, w).float()
    known = keep.to(x.device)[:, None].expand(b, c, h, w).reshape(b * c, 1, h, w).float()
    degree = -_laplacian(torch.ones(1, 1, h, w, device=x.device), torch.zeros(1, 1, h, w, device=x.device))
    dot = lambda u, v: torch.einsum("bp,bp->b", u.reshape(len(u), -1), v.reshape(len(v), -1))  # noqa: E731
    missing = 1.0 - known
    residual = _laplacian(x * known, torch.zeros_like(degree)).mul_(-missing)  # the known neighbours' pull
    solution = torch.zeros_like(x)
    solved = torch.zeros_like(x)
    direction = residual.clone()
    squared = dot(residual, residual)
    limit = tolerance**2 * squared
    active = torch.arange(len(x), device=x.device)
    iterations, bound = 0, 10 * (h + w)  # about 2 (h + w) suffice; the bound only guards against a stall
    while True:
        done = squared <= limit
        finished = int(done.sum())
        if finished == len(active) or iterations == bound:
            break
        if finished >= max(1, len(active) // 4):  # drop the converged systems, a quarter at a time
            solved.index_copy_(0, active[done], solution[done])
            rest = ~done
            active, solution, residual, direction = active[rest], solution[rest], residual[rest], direction[rest]
            missing, squared, limit = missing[rest], squared[rest], limit[rest]
        iterations += 1
        applied = _laplacian(direction, degree).mul_(missing)
        curvature = dot(direction, applied)
        step = torch.where(curvature > 0, squared / curvature.clamp_min(1e-30), 0.0)[:, None, None, None]
        solution.addcmul_(step, direction)
        residual.addcmul_(step, applied, value=-1.0)
        updated = dot(residual, residual)
        ratio = torch.where(squared > 0, updated / squared.clamp_min(1e-30), 0.0)[:, None, None, None]
        direction.mul_(ratio).add_(residual)
        squared = updated
    if iterations == bound:
        logger.warning("ROAD imputation stopped before converging (relative residual above %g)", tolerance)
    logger.debug("ROAD imputation of %d images: %d conjugate-gradient iterations", b, iterations)
    solved.index_copy_(0, active, solution)
    if noise:
        solved.add_(torch.randn(x.shape, generator=generator).to(x.device), alpha=noise)
    return torch.where(known.bool(), x, solved).reshape(b, c, h, w).to(images.dtype)


@dataclasses.dataclass(frozen=True)
class RoadScores:
    """Per-image ROAD scores, each the change in the target's softmax probability averaged over the
    percentiles: ``morf`` after imputing the most relevant pixels (more negative is more faithful),
    ``lerf`` after imputing the least relevant ones (closer to 0 or above is more faithful)."""

    morf: np.ndarray
    lerf: np.ndarray

    @property
    def combined(self) -> np.ndarray:
        """pytorch-grad-cam's ROADCombined: (LeRF - MoRF) / 2; higher is more faithful, 0 is chance."""
        return ((self.lerf - self.morf) / 2).astype(np.float32)


def road(
    model: nn.Module,
    images: torch.Tensor,
    targets: Sequence[int] | np.ndarray | torch.Tensor,
    maps: np.ndarray,
    *,
    percentiles: Sequence[float] = ROAD_PERCENTILES,
    noise: float = ROAD_NOISE,
    seed: int = 0,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> RoadScores:
    """ROAD most- and least-relevant-first (Rong et al. 2022) with pytorch-grad-cam's conventions.

    At percentile p, MoRF keeps the pixels whose map value is below the map's p-th percentile and
    imputes the rest (``RemoveMostRelevantFirst``); LeRF keeps those whose ``1 - map`` is below that
    percentile of ``1 - map`` (``RemoveLeastRelevantFirst``). The score at each percentile is the target's
    softmax probability after imputation minus before (``PerturbationConfidenceMetric``), averaged over
    ``percentiles`` (``ROADMostRelevantFirstAverage`` / ``ROADLeastRelevantFirstAverage``).
    """
    labels, maps = check_inputs(images, targets, maps)
    device = model_device(model)
    images = images.detach().to(device=device, dtype=torch.float32)
    n, c, h, w = images.shape
    flat = torch.from_numpy(maps).reshape(n, -1).double()
    levels = torch.tensor([p / 100 for p in percentiles], dtype=torch.float64)
    keep = torch.cat(
        [
            flat[None] < torch.quantile(flat, levels, dim=1)[..., None],  # MoRF
            (1 - flat)[None] < torch.quantile(1 - flat, levels, dim=1)[..., None],  # LeRF
        ]
    ).reshape(2 * len(levels), n, h, w)
    orders = keep.shape[0]
    generator = torch.Generator().manual_seed(seed)
    after = torch.empty(orders, n)
    per_chunk = max(1, IMPUTE_VALUES // (orders * c * h * w))
    with evaluating(model):
        before = target_probability(model, images, labels.to(device), batch_size)
        for start in range(0, n, per_chunk):
            stop = min(start + per_chunk, n)
            batch = images[start:stop].repeat(orders, 1, 1, 1)
            filled = impute(batch, keep[:, start:stop].reshape(-1, h, w), noise=noise, generator=generator)
            after[:, start:stop] = target_probability(
                model, filled, labels[start:stop].to(device).repeat(orders), batch_size
            ).reshape(orders, -1)
            if progress:
                progress(stop / n, "ROAD")
    change = (after - before[None]).numpy()
    half = len(levels)
    return RoadScores(change[:half].mean(0).astype(np.float32), change[half:].mean(0).astype(np.float32))
