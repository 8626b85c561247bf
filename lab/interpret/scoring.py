"""How interpretable are a model's class activation maps? Each metric next to its baselines, with 95% CIs.

UI-free. :func:`evaluate` scores one model's maps (any CAM method; N x H x W in [0, 1], each map on its
own scale) on the same images for every metric below, and the same metric for baseline maps that know
nothing about the model; :func:`compare` and :func:`sentence` answer "does loss A make the maps more
interpretable than loss B?" from the paired per-image values. The per-image metrics live in
:mod:`lab.interpret.metrics` and :mod:`lab.interpret.road`, the statistics and sentences in
:mod:`lab.interpret.statistics`.

Metrics (``p`` is the target class's softmax probability of the inference logits; the target is the
predicted or the true class, the caller's choice):

================================  ==========================================================  ========  ======
name                              definition (source)                                          range     better
================================  ==========================================================  ========  ======
``deletion_auc``                  area under ``p`` as the pixels the map ranks highest are      [0, 1]    lower
                                  replaced by a blurred copy of the image, 0 to all pixels in
                                  ``steps`` steps (Petsiuk et al., RISE, BMVC 2018)
``insertion_auc``                 the same, putting the original pixels back into the blurred   [0, 1]    higher
                                  image, most relevant first (RISE)
``road``                          ROAD combined, (LeRF - MoRF) / 2: pytorch-grad-cam's          [-.5, .5] higher
                                  ROADCombined (Rong et al., ICML 2022), 0 is chance
``road_morf``                     change in ``p`` after imputing the most relevant pixels,      [-1, 1]   lower
                                  averaged over the percentiles (ROADMostRelevantFirstAverage)
``road_lerf``                     the same for the least relevant pixels                        [-1, 1]   higher
                                  (ROADLeastRelevantFirstAverage)
``confidence_drop``               max(0, p - p of the image multiplied by the map):             [0, 1]    lower
                                  pytorch-grad-cam's DropInConfidence ("average drop",
                                  Chattopadhay et al., Grad-CAM++, WACV 2018)
``confidence_increase``           1 if multiplying by the map raises ``p``, else 0 (its mean    {0, 1}    higher
                                  is a share of images): IncreaseInConfidence (Grad-CAM++)
``object_mass``                   share of the map's mass on foreground pixels, the             [0, 1]    higher
                                  energy-based pointing game (Wang et al., Score-CAM, CVPR-W
                                  2020); foreground = nonzero raw pixels, so None unless the
                                  caller says the foreground is known (MNIST-like data)
``randomization_similarity``      Spearman rank correlation of each map with the map of the     [-1, 1]   lower
                                  same model after its top layers are re-initialized (Adebayo
                                  et al., Sanity Checks for Saliency Maps, NeurIPS 2018); high
                                  means the map does not depend on what those layers learned
================================  ==========================================================  ========  ======

Baselines, scored on the same images with the same targets: ``random`` (seeded uniform noise, drawn at
the CAM's resolution when the caller gives it and upsampled like a CAM), ``gaussian`` (one centered
Gaussian: the "objects are in the middle" prior), and for deletion and insertion ``blurred``: ``p`` of the
blurred image itself, where the deletion curve ends and the insertion curve starts (an AUC at that level
means the curve never left it).
For ``randomization_similarity`` the random baseline is the similarity of each map to a random map (what
"changed completely" looks like), so there, and only there, not distinguishable is the good outcome.

Statistics (:mod:`lab.interpret.statistics`): each value is a mean over images with a bootstrap percentile 95%
CI (2,000 resamples of the images, fixed seed; images whose value is undefined, such as an all-zero map's
object mass, are left out). Each metric is tested against each baseline by a paired t-test over the
images (method map minus baseline, image by image); the p-values against one baseline are adjusted by
Holm-Bonferroni over the metrics scored, and the ``verdict`` against the random map is ``better``,
``worse`` or ``not distinguishable`` at the 5% level of the adjusted p, by the metric's direction. A
metric that is not distinguishable says nothing about the maps; one that is worse than a random map is
a finding. A test over images says how sure these numbers are for this trained model, not across
training seeds: :func:`lab.interpret.statistics.over_seeds` repeats the tests over the runs of several seeds.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from lab.interpret.metrics import (
    BATCH_SIZE,
    BLUR_SIGMA,
    DELETION_STEPS,
    GAUSSIAN_SIGMA,
    blurred,
    check_inputs,
    confidence_change,
    deletion_insertion,
    gaussian_map,
    object_mass,
    random_maps,
    randomization_similarity,
    rank_correlation,
)
from lab.interpret.road import ROAD_PERCENTILES, road
from lab.interpret.statistics import (
    CI_LEVEL,
    METRICS,
    REPORTED,
    RESAMPLES,
    Comparison,
    Interval,
    MetricResult,
    MetricSpec,
    SeedResult,
    adjust,
    compare,
    compare_all,
    mean_ci,
    over_seeds,
    paired_difference,
    summarize,
    to_json,
)
from lab.interpret.verdicts import sentence
from lab.progress import Progress, progress_span
from lab.training.inference import inference_copy

logger = logging.getLogger(__name__)

__all__ = [
    "BASELINES",
    "METRICS",
    "REPORTED",
    "Comparison",
    "Interval",
    "MetricResult",
    "MetricSpec",
    "SeedResult",
    "Settings",
    "adjust",
    "coarseness",
    "compare",
    "compare_all",
    "evaluate",
    "mean_ci",
    "over_seeds",
    "paired_difference",
    "sentence",
    "summarize",
    "to_json",
]

BASELINES = ("random", "gaussian")
READABLE_SIDE = 16  # pixels: a smaller image has too few pixels, and its maps too few cells, to show a shape


def coarseness(image_shape: tuple[int, int], cam_shape: Sequence[int]) -> str | None:
    """What a reader must know before reading maps of images this small (``image_shape``, H x W) with
    ``cam_shape`` cells; None when the images are large enough."""
    height, width = image_shape
    if min(height, width) >= READABLE_SIDE:
        return None
    cells = "x".join(str(c) for c in cam_shape[-2:]) if len(cam_shape) >= 2 else "a few"
    return (
        f"These {height}x{width} images have {height * width} pixels, so their maps ({cells} cells) are too coarse "
        "to show which strokes or parts the model looked at: read them as rough blocks, not outlines, and do not "
        "compare losses by their shapes. Maps of 28x28 images can be read: open the 28x28 example."
    )


@dataclasses.dataclass(frozen=True)
class Settings:
    """How the metrics are computed; the defaults suit 8x8 to 32x32 images and small CNNs."""

    steps: int = DELETION_STEPS
    road_percentiles: tuple[float, ...] = ROAD_PERCENTILES
    blur_sigma: float = BLUR_SIGMA
    gaussian_sigma: float = GAUSSIAN_SIGMA
    baselines: tuple[str, ...] = BASELINES
    level: float = CI_LEVEL
    resamples: int = RESAMPLES
    seed: int = 0
    batch_size: int = BATCH_SIZE

    def __post_init__(self) -> None:
        unknown = set(self.baselines) - set(BASELINES)
        if "random" not in self.baselines or unknown:
            raise ValueError(f"baselines must include 'random' and come from {BASELINES}, got {self.baselines}")
        if not 0 < self.level < 1 or self.resamples < 100:
            raise ValueError("level must be in (0, 1) and resamples at least 100")


# ---------------------------------------------------------------- the whole evaluation


def _cost(settings: Settings, n: int, maps: int, with_randomization: bool) -> dict[str, float]:
    """Relative cost of each stage in model passes over the images, for a progress bar that moves evenly."""
    return {
        "deletion": maps * 2 * (settings.steps - 1) * n + 2 * n,
        "road": maps * (2 * len(settings.road_percentiles) + 1) * n,
        "confidence": maps * 2 * n,
        "randomization": 6 * n if with_randomization else 0,  # a CAM is about a forward and a backward pass
    }


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    raw_images: np.ndarray | None,
    targets: Sequence[int] | np.ndarray | torch.Tensor,
    maps: np.ndarray,
    *,
    foreground_known: bool = False,
    cam_fn: Callable[[nn.Module], np.ndarray] | None = None,
    top_layers: Sequence[str] = (),
    cam_shape: tuple[int, int] | None = None,
    metrics: Sequence[str] = tuple(METRICS),
    settings: Settings = Settings(),
    progress: Progress | None = None,
) -> dict[str, MetricResult | None]:
    """Every metric in ``metrics`` for ``maps`` (N x H x W in [0, 1]) of ``model`` on ``images``.

    ``model``: normalized images to inference logits. ``images``: the normalized N x C x H x W batch;
    ``raw_images``: the same images as uint8 (for the foreground; may be None when it is unknown).
    ``targets``: the class each map explains. ``foreground_known``: whether nonzero raw pixels are the
    object (MNIST-like data); otherwise ``object_mass`` is None. ``cam_fn(model) -> maps`` and
    ``top_layers`` (module names for :func:`lab.interpret.metrics.randomized_copy`) enable
    ``randomization_similarity``, else it is None. ``cam_shape``: the CAM's resolution before upsampling,
    at which the random baseline is drawn. ``metrics``: which to compute (the others are left out), and
    the family the p-values are adjusted over;
    ``settings``: steps, percentiles, baselines, bootstrap. ``progress(fraction, text)`` is told how far
    the work is, in proportion to the model passes each stage needs.
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown} (choose from: {', '.join(METRICS)})")
    _, maps = check_inputs(images, targets, maps)
    n, _, h, w = images.shape
    maps_by_kind = {"method": maps, "random": random_maps(n, (h, w), cam_shape=cam_shape, seed=settings.seed)}
    if "gaussian" in settings.baselines:
        maps_by_kind["gaussian"] = np.broadcast_to(gaussian_map((h, w), settings.gaussian_sigma), (n, h, w)).copy()
    wanted = set(metrics)
    randomize = "randomization_similarity" in wanted and cam_fn is not None and bool(top_layers)
    cost = _cost(settings, n, len(maps_by_kind), randomize)
    active = {
        "deletion": bool(wanted & {"deletion_auc", "insertion_auc"}),
        "road": bool(wanted & {"road", "road_morf", "road_lerf"}),
        "confidence": bool(wanted & {"confidence_drop", "confidence_increase"}),
        "randomization": randomize,
    }
    total = sum(cost[k] for k, on in active.items() if on) or 1.0
    done = 0.0
    scorer = inference_copy(model) if any(active[k] for k in ("deletion", "road", "confidence")) else model
    per_image: dict[str, dict[str, np.ndarray]] = {}
    started = time.perf_counter()

    def stage(key: str) -> Progress | None:
        nonlocal done
        span = progress_span(progress, done / total, (done + cost[key]) / total)
        done += cost[key]
        return span

    if active["deletion"]:
        reference = blurred(images.float(), settings.blur_sigma)
        span = stage("deletion")
        curves = {
            key: deletion_insertion(
                scorer,
                images,
                targets,
                kind_maps,
                steps=settings.steps,
                reference=reference,
                seed=settings.seed,
                batch_size=settings.batch_size,
                progress=progress_span(span, i / len(maps_by_kind), (i + 1) / len(maps_by_kind)),
            )
            for i, (key, kind_maps) in enumerate(maps_by_kind.items())
        }
        level = curves["method"].deletion[:, -1]  # p of the blurred image
        per_image["deletion_auc"] = {k: c.deletion_auc for k, c in curves.items()} | {"blurred": level}
        per_image["insertion_auc"] = {k: c.insertion_auc for k, c in curves.items()} | {"blurred": level}
    if active["road"]:
        span = stage("road")
        scores = {
            key: road(
                scorer,
                images,
                targets,
                kind_maps,
                percentiles=settings.road_percentiles,
                seed=settings.seed,
                batch_size=settings.batch_size,
                progress=progress_span(span, i / len(maps_by_kind), (i + 1) / len(maps_by_kind)),
            )
            for i, (key, kind_maps) in enumerate(maps_by_kind.items())
        }
        per_image["road"] = {k: s.combined for k, s in scores.items()}
        per_image["road_morf"] = {k: s.morf for k, s in scores.items()}
        per_image["road_lerf"] = {k: s.lerf for k, s in scores.items()}
    if active["confidence"]:
        span = stage("confidence")
        changes = {}
        for i, (key, kind_maps) in enumerate(maps_by_kind.items()):
            changes[key] = confidence_change(scorer, images, targets, kind_maps, batch_size=settings.batch_size)
            if span:
                span((i + 1) / len(maps_by_kind), "confidence change")
        per_image["confidence_drop"] = {k: c.drop for k, c in changes.items()}
        per_image["confidence_increase"] = {k: c.increase for k, c in changes.items()}
    if "object_mass" in wanted and foreground_known:
        if raw_images is None:
            raise ValueError("object mass needs the raw images when the foreground is known")
        per_image["object_mass"] = {k: object_mass(kind_maps, raw_images) for k, kind_maps in maps_by_kind.items()}
    if randomize:
        span = stage("randomization")
        if span:
            span(0.0, "randomization check")
        per_image["randomization_similarity"] = {
            "method": randomization_similarity(model, cam_fn, top_layers, maps=maps, seed=settings.seed),
            "random": rank_correlation(maps, maps_by_kind["random"]),
        }
    results: dict[str, MetricResult | None] = {}
    for name in metrics:
        if name not in per_image:
            results[name] = None
            continue
        values = per_image[name]
        baselines = {k: v for k, v in values.items() if k != "method"}
        results[name] = summarize(
            name, values["method"], baselines, level=settings.level, resamples=settings.resamples, seed=settings.seed
        )
    results = adjust(results, settings.level)
    if progress:
        progress(1.0, "done")
    logger.info("interpretability metrics for %d images in %.1f s", n, time.perf_counter() - started)
    return results
