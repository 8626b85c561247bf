"""What a run measures on the test set: the fixed snapshot subset, the per-epoch evaluation subset, and the
features, penultimate activations and logits of a model on a batch of images."""

from __future__ import annotations

import torch

import losses
import models
from lab.training.inference import inference_copy

EVAL_BATCH = 2048  # on accelerators
CPU_EVAL_BATCH = 256  # on a CPU: batches that stay in the caches (bench/throughput.py)
SNAPSHOT_SEED = 1234


def snapshot_indices(n_test: int, points: int) -> torch.Tensor:
    """The fixed test subset whose features are stored every epoch (the same for every run)."""
    generator = torch.Generator().manual_seed(SNAPSHOT_SEED)
    return torch.randperm(n_test, generator=generator)[: min(points, n_test)].sort().values


def evaluation_indices(n_test: int, images: int, snapshot_points: int) -> torch.Tensor | None:
    """The fixed test subset evaluated after every epoch, sorted: the snapshot subset and the next images of
    the same fixed order, ``images`` in all (at least the snapshot subset); None for the whole test set
    (``images`` 0 or at least its size). The whole test set is evaluated once, at the end."""
    count = max(images, snapshot_points)
    if images == 0 or count >= n_test:
        return None
    generator = torch.Generator().manual_seed(SNAPSHOT_SEED)
    return torch.randperm(n_test, generator=generator)[:count].sort().values


@torch.inference_mode()
def embed(
    model: models.FeatureNet, head: losses.LossHead, images: torch.Tensor, device: torch.device
) -> dict[str, torch.Tensor]:
    """Features, penultimate activations and inference logits of normalised ``images``, in large batches
    (``EVAL_BATCH`` on accelerators, ``CPU_EVAL_BATCH`` on the CPU), computed by an inference copy of
    ``model`` (:func:`lab.training.inference.inference_copy`: batch norms folded into the convolutions, about twice
    the images per second of the model itself on a CPU; the outputs differ by float rounding only)."""
    model.eval()
    head.eval()
    model = inference_copy(model)
    parts: dict[str, list[torch.Tensor]] = {"penultimate": [], "features": [], "logits": []}
    channels_last = is_channels_last(model)
    size = CPU_EVAL_BATCH if torch.device(device).type == "cpu" else EVAL_BATCH
    for start in range(0, len(images), size):
        batch = images[start : start + size].to(device, non_blocking=True)
        if channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        penultimate, features = model.forward_with_penultimate(batch)
        parts["penultimate"].append(penultimate.float().cpu())
        parts["features"].append(features.float().cpu())
        parts["logits"].append(head.logits(features).float().cpu())
    return {k: torch.cat(v) if v else torch.empty(0) for k, v in parts.items()}


def is_channels_last(model: torch.nn.Module) -> bool:
    """Whether the model's convolution weights are in the channels-last layout."""
    return any(
        p.ndim == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
        for p in model.parameters()
    )
