"""Models for many forward passes and no backward one: an eval-mode copy with its batch norms folded into
the convolutions before them. Used wherever a trained model is evaluated in bulk: the trainer's per-epoch
and final evaluation, and the interpretability metrics' scoring passes."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def inference_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` without gradients, for many forward passes: batch norms
    folded into the convolutions before them (:func:`fold_batch_norms`) and, on a CPU, weights in the
    channels-last layout (oneDNN's fast path: 1.9 times the images per second for ``small`` on 28x28, one
    thread). The caller's model is never touched."""
    clone = copy.deepcopy(model).eval().requires_grad_(False)
    fold_batch_norms(clone)
    if model_device(clone).type == "cpu":
        clone = clone.to(memory_format=torch.channels_last)
    return clone


def fold_batch_norms(model: nn.Module) -> None:
    """In an eval-mode ``model``, fold each BatchNorm2d that directly follows a Conv2d in an ``nn.Sequential``
    into that convolution (eval-mode batch norm is a per-channel affine map) and let a ReLU right after it
    work in place. Each fold saves a read and a write of every activation (about 1.3 times the images per
    second for ``small`` on 28x28, two threads). Outputs change only by float rounding. The in-place ReLU
    only ever sees the fresh output of the fused convolution, so no tensor anyone else holds is modified."""
    for sequence in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(sequence) - 1):
            conv, norm = sequence[i], sequence[i + 1]
            if not (isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)):
                continue
            if norm.training or norm.running_mean is None or norm.running_var is None:
                continue  # batch statistics, not a fixed affine map: nothing to fold
            sequence[i] = fuse_conv_bn_eval(conv, norm)
            sequence[i + 1] = nn.Identity()
            if i + 2 < len(sequence) and isinstance(sequence[i + 2], nn.ReLU):
                sequence[i + 2].inplace = True


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters are (the CPU for a model without any)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))
