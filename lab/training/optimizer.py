"""The optimizer and learning-rate schedule a run trains with, built from its config, and a warm-up of the
kernels they use."""

from __future__ import annotations

from typing import Any

import torch

from lab.settings.config import RunConfig


def warm_up() -> None:
    """Pay once, ahead of time, the imports the first training would otherwise wait for: building a
    torch optimizer imports ``torch._dynamo`` (seconds on a CPU; bench/RESULTS.md)."""
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


def make_optimizer(
    config: RunConfig, params: list[torch.nn.Parameter], total_steps: int
) -> tuple[torch.optim.Optimizer, Any]:
    if config.optimizer == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            params, lr=config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay
        )
    else:
        optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total_steps)
    return optimizer, schedule
