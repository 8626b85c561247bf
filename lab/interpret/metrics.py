"""Per-image interpretability metrics of class activation maps, and the baseline maps they are compared with.

Every metric takes the maps as an N x H x W float array in [0, 1] (any CAM method, each map on its own
scale) and returns one value per image; :mod:`lab.interpret.scoring` holds the definitions, sources and
directions, and turns these values into means with confidence intervals; ROAD is in
:mod:`lab.interpret.road`. No UI.

Speed: every perturbation of a batch is built at once with tensor operations and scored in large
batches under ``inference_mode``; nothing loops over pixels in Python.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from scipy.stats import rankdata
from torch import nn

from lab.progress import Progress
from lab.training.inference import model_device

logger = logging.getLogger(__name__)

DELETION_STEPS = 8  # 98 pixels a step on 28x28, about 6 cells of a 7x7 map; each step costs 2 passes per image
BLUR_SIGMA = 0.125  # of the image side: 3.5 px on 28x28, enough to blur away a digit's strokes
GAUSSIAN_SIGMA = 0.25  # of the image side
BATCH_SIZE = 256  # activations stay in the CPU's caches (bench/interpret.py)


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """``model`` in eval mode with no autograd for the block; each submodule's train flag restored after."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        for m, training in flags:
            m.train(training)


def check_inputs(images: torch.Tensor, targets: object, maps: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """The targets as a long tensor and the maps as float32, after checking that they fit the images."""
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty N x C x H x W batch, got shape {tuple(images.shape)}")
    n, _, h, w = images.shape
    maps = np.asarray(maps, dtype=np.float32)
    if maps.shape != (n, h, w):
        raise ValueError(f"maps must be N x H x W = {(n, h, w)} like the images, got {maps.shape}")
    if not np.isfinite(maps).all() or maps.min() < 0 or maps.max() > 1 + 1e-6:
        raise ValueError("maps must be finite and in [0, 1] (scale each map on its own first)")
    labels = torch.as_tensor(np.asarray(targets)).reshape(-1).long()
    if len(labels) != n:
        raise ValueError(f"got {len(labels)} targets for {n} images")
    return labels, maps


def target_probability(
    model: nn.Module, images: torch.Tensor, targets: torch.Tensor, batch_size: int = BATCH_SIZE
) -> torch.Tensor:
    """Softmax probability of ``targets[i]`` for each image (pytorch-grad-cam's ClassifierOutputSoftmaxTarget),
    computed in batches; call inside :func:`evaluating`."""
    parts = [
        model(images[s : s + batch_size]).float().softmax(1).gather(1, targets[s : s + batch_size, None])[:, 0]
        for s in range(0, len(images), batch_size)
    ]
    return torch.cat(parts).cpu()


# ---------------------------------------------------------------- baseline maps and reference images


def random_maps(
    n: int, size: tuple[int, int], *, cam_shape: tuple[int, int] | None = None, seed: int = 0
) -> np.ndarray:
    """``n`` seeded uniform-noise maps, N x H x W in [0, 1].

    Drawn at ``cam_shape`` (the CAM layer's resolution, e.g. 7 x 7 for a 28 x 28 image) and upsampled
    by pytorch-grad-cam's own ``scale_cam_image`` (min-max, then bilinear resize, as BaseCAM does with
    CAMs), so the random baseline is as coarse as the maps it is compared with; None draws per pixel.
    """
    height, width = size
    low = cam_shape or size
    noise = torch.rand(n, *low, generator=torch.Generator().manual_seed(seed)).numpy()
    return scale_cam_image(noise, target_size=(width, height)).astype(np.float32)


def gaussian_map(size: tuple[int, int], sigma: float = GAUSSIAN_SIGMA) -> np.ndarray:
    """A centered isotropic Gaussian, H x W with peak 1; ``sigma`` as a fraction of the shorter side.
    The "center bias" baseline: small datasets center their objects."""
    height, width = size
    s = sigma * min(height, width)
    y = (np.arange(height) - (height - 1) / 2) ** 2
    x = (np.arange(width) - (width - 1) / 2) ** 2
    return np.exp(-(y[:, None] + x[None, :]) / (2 * s * s)).astype(np.float32)


def blurred(images: torch.Tensor, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """Images with a Gaussian blur (``sigma`` as a fraction of the shorter side; edges replicated): the
    reference that deletion fills removed pixels from and insertion starts from (RISE)."""
    side = min(images.shape[-2:])
    s = max(sigma * side, 1e-3)
    radius = max(1, min(math.ceil(3 * s), side - 1))
    taps = torch.exp(-(torch.arange(-radius, radius + 1, dtype=torch.float32) ** 2) / (2 * s * s))
    taps = (taps / taps.sum()).to(images.device)
    n, c, h, w = images.shape
    x = F.pad(images.reshape(n * c, 1, h, w).float(), (radius,) * 4, mode="replicate")
    x = F.conv2d(x, taps.view(1, 1, 1, -1))
    x = F.conv2d(x, taps.view(1, 1, -1, 1))
    return x.reshape(n, c, h, w).to(images.dtype)


# ---------------------------------------------------------------- deletion and insertion (RISE)


@dataclasses.dataclass(frozen=True)
class Curves:
    """Target probability after each step of deletion and of insertion, N x (steps + 1), at the
    ``fractions`` of pixels changed; the AUCs are the trapezoid areas over fractions 0..1."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray

    def _area(self, curves: np.ndarray) -> np.ndarray:
        return ((curves[:, 1:] + curves[:, :-1]) / 2 * np.diff(self.fractions)).sum(1).astype(np.float32)

    @property
    def deletion_auc(self) -> np.ndarray:
        return self._area(self.deletion)

    @property
    def insertion_auc(self) -> np.ndarray:
        return self._area(self.insertion)


def relevance_ranks(maps: np.ndarray, seed: int = 0) -> torch.Tensor:
    """Each pixel's rank, N x (H*W), 0 = most relevant. Ties go in a seeded random order: removing a
    flat map's pixels in raster order would delete the top rows first and look informative."""
    values = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32)).reshape(len(maps), -1)
    n, p = values.shape
    shuffle = torch.rand(n, p, generator=torch.Generator().manual_seed(seed)).argsort(1)
    order = shuffle.gather(1, values.gather(1, shuffle).argsort(dim=1, descending=True, stable=True))
    return torch.empty_like(order).scatter_(1, order, torch.arange(p).expand(n, p).contiguous())


def deletion_insertion(
    model: nn.Module,
    images: torch.Tensor,
    targets: Sequence[int] | np.ndarray | torch.Tensor,
    maps: np.ndarray,
    *,
    steps: int = DELETION_STEPS,
    reference: torch.Tensor | None = None,
    seed: int = 0,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> Curves:
    """Deletion and insertion curves (Petsiuk et al., RISE, 2018) of ``maps`` for ``model``.

    Pixels are ranked by the map, most relevant first. Deletion replaces the first k of them with the
    ``reference`` image (default :func:`blurred`); insertion starts from the reference and puts the first
    k original pixels back; k goes from 0 to all pixels in ``steps`` equal steps. The two curves share
    their end points (the original and the reference image), so those are scored once.
    """
    labels, maps = check_inputs(images, targets, maps)
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    device = model_device(model)
    images = images.detach().to(device=device, dtype=torch.float32)
    reference = blurred(images) if reference is None else reference.detach().to(device=device, dtype=torch.float32)
    n, c, h, w = images.shape
    pixels = h * w
    ranks = relevance_ranks(maps, seed).to(device)
    counts = torch.round(torch.linspace(0, pixels, steps + 1)).long().to(device)
    original, ref = images.reshape(n, c, pixels), reference.reshape(n, c, pixels)
    deletion, insertion = torch.empty(n, steps + 1), torch.empty(n, steps + 1)
    interior = list(range(1, steps))
    per_chunk = max(1, batch_size // (2 * n))
    with evaluating(model):
        ends = target_probability(model, torch.cat([images, reference]), labels.repeat(2).to(device), batch_size)
        deletion[:, 0], deletion[:, steps] = ends[:n], ends[n:]
        insertion[:, 0], insertion[:, steps] = ends[n:], ends[:n]
        for start in range(0, len(interior), per_chunk):
            chunk = interior[start : start + per_chunk]
            changed = (ranks[None] < counts[chunk][:, None, None])[:, :, None, :]  # step, image, 1, pixel
            batch = torch.cat(
                [torch.where(changed, ref, original), torch.where(changed, original, ref)]
            )  # deletion, insertion
            probs = target_probability(
                model, batch.reshape(-1, c, h, w), labels.to(device).repeat(2 * len(chunk)), batch_size
            ).reshape(2, len(chunk), n)
            deletion[:, chunk], insertion[:, chunk] = probs[0].T, probs[1].T
            if progress:
                progress((start + len(chunk)) / len(interior), "deletion and insertion")
    return Curves((counts.cpu().double() / pixels).numpy(), deletion.numpy(), insertion.numpy())


# ---------------------------------------------------------------- the image multiplied by the map


@dataclasses.dataclass(frozen=True)
class ConfidenceChange:
    """Per image: ``drop`` = max(0, p_before - p_after) (pytorch-grad-cam's DropInConfidence) and
    ``increase`` = 1 if p_after > p_before else 0 (IncreaseInConfidence), where p_after is the target's
    softmax probability on the normalized image multiplied by its map."""

    drop: np.ndarray
    increase: np.ndarray


def confidence_change(
    model: nn.Module,
    images: torch.Tensor,
    targets: Sequence[int] | np.ndarray | torch.Tensor,
    maps: np.ndarray,
    *,
    batch_size: int = BATCH_SIZE,
) -> ConfidenceChange:
    """pytorch-grad-cam's ``CamMultImageConfidenceChange`` (p_after - p_before), run once; drop and
    increase are the two transforms its DropInConfidence and IncreaseInConfidence apply to it."""
    labels, maps = check_inputs(images, targets, maps)
    device = model_device(model)
    images = images.detach().to(device=device, dtype=torch.float32)
    metric = CamMultImageConfidenceChange()
    parts = []
    with evaluating(model):
        for s in range(0, len(images), batch_size):
            softmax_targets = [ClassifierOutputSoftmaxTarget(int(t)) for t in labels[s : s + batch_size]]
            parts.append(metric(images[s : s + batch_size], maps[s : s + batch_size], softmax_targets, model))
    change = np.concatenate(parts).astype(np.float32)
    return ConfidenceChange(np.maximum(-change, 0).astype(np.float32), (change > 0).astype(np.float32))


# ---------------------------------------------------------------- mass on the object


def foreground(raw_images: np.ndarray) -> np.ndarray:
    """N x H x W bool: pixels that are nonzero in any channel of the raw uint8 N x C x H x W images
    (MNIST-like data: a black background)."""
    raw = np.asarray(raw_images)
    if raw.ndim != 4:
        raise ValueError(f"raw images must be N x C x H x W, got shape {raw.shape}")
    return (raw > 0).any(axis=1)


def object_mass(maps: np.ndarray, raw_images: np.ndarray) -> np.ndarray:
    """Share of each map's total mass on the foreground (Score-CAM's energy-based pointing game):
    sum(map * foreground) / sum(map); NaN for an all-zero map, which points nowhere."""
    maps = np.asarray(maps, dtype=np.float64)
    inside = foreground(raw_images)
    if inside.shape != maps.shape:
        raise ValueError(f"raw images of size {inside.shape} do not match maps of size {maps.shape}")
    total = maps.sum((1, 2))
    on = (maps * inside).sum((1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, on / total, np.nan).astype(np.float32)


# ---------------------------------------------------------------- model randomization (Adebayo et al. 2018)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation between ``a[i]`` and ``b[i]`` (tied values share their mean rank).

    A constant map has no ranking: against a constant map the similarity is 1, against any other 0
    (an explanation that went blank has changed completely).
    """
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    if a.shape != b.shape:
        raise ValueError(f"maps of shapes {a.shape} and {b.shape} cannot be compared")
    ra = rankdata(a, axis=1)
    rb = rankdata(b, axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    norm = np.sqrt((ra * ra).sum(1) * (rb * rb).sum(1))
    flat_a, flat_b = np.ptp(a, axis=1) == 0, np.ptp(b, axis=1) == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(norm > 0, (ra * rb).sum(1) / norm, 0.0)
    return np.where(flat_a & flat_b, 1.0, rho).astype(np.float32)


def randomized_copy(model: nn.Module, top_layers: Sequence[str], seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` whose modules named in ``top_layers`` (dotted paths, as in
    ``model.get_submodule``) are re-initialized with their own ``reset_parameters`` (seeded); the
    original is untouched. Every parameter under those modules must be covered by a ``reset_parameters``."""
    if not top_layers:
        raise ValueError("name at least one module to re-initialize (the model's top layers)")
    clone = copy.deepcopy(model)
    devices = sorted({p.device.index or 0 for p in clone.parameters() if p.is_cuda})
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for name in top_layers:
            top = clone.get_submodule(name)
            reset = [m for m in top.modules() if callable(getattr(m, "reset_parameters", None))]
            covered = {id(p) for m in reset for p in m.parameters()}
            uncovered = [n for n, p in top.named_parameters() if id(p) not in covered]
            if uncovered or not covered:
                raise ValueError(
                    f"module {name!r} has parameters no reset_parameters re-initializes: {uncovered or 'none at all'}"
                )
            for m in reset:
                m.reset_parameters()
    return clone


def randomization_similarity(
    model: nn.Module,
    cam_fn: Callable[[nn.Module], np.ndarray],
    top_layers: Sequence[str],
    *,
    maps: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Model-parameter randomization test (Adebayo et al., Sanity Checks for Saliency Maps, 2018): the
    rank correlation of each image's map from ``model`` with its map from a copy whose ``top_layers``
    are re-initialized (:func:`randomized_copy`). ``cam_fn(model)`` makes the N maps for a model (same
    images, same targets); pass ``maps`` when the trained model's maps are already at hand."""
    trained = cam_fn(model) if maps is None else maps
    return rank_correlation(trained, cam_fn(randomized_copy(model, top_layers, seed)))
