"""Divergence: a non-finite loss or weights stop a run at once; each step's loss is checked without a per-step
host sync on an accelerator."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import torch


class Diverged(Exception):
    """Training produced a non-finite loss or weights."""


def all_finite(modules: Sequence[torch.nn.Module]) -> bool:
    """Whether every floating-point parameter and buffer is finite, with one host sync."""
    checks = [torch.isfinite(t).all() for m in modules for t in m.state_dict().values() if t.is_floating_point()]
    return bool(torch.stack(checks).all()) if checks else True


class LossWatch:
    """Finds the first non-finite training loss, by epoch and step, without making the device wait.

    On the CPU each loss is read as it comes (reading a CPU scalar costs nothing). On CUDA each loss is
    copied to pinned host memory asynchronously and read one step later, after the next step has been
    queued: the device stays busy while Python checks, and a divergence is still caught with its exact
    step, at most one step late. :meth:`flush` checks everything still pending (end of epoch, stop).
    """

    SLOTS = 2

    def __init__(self, device: torch.device, lagged: bool | None = None) -> None:
        self.lagged = device.type == "cuda" if lagged is None else lagged
        self.pending: deque[tuple[int, int, int]] = deque()
        if self.lagged:
            self.host, self.events = self._buffers()
            self.next_slot = 0

    def _buffers(self) -> tuple[torch.Tensor, list[Any]]:
        """Pinned host slots the losses are copied into, and an event per slot marking the copy done."""
        return torch.empty(self.SLOTS, pin_memory=True), [torch.cuda.Event() for _ in range(self.SLOTS)]

    def record(self, loss: torch.Tensor, epoch: int, step: int) -> None:
        if not self.lagged:
            value = loss.item()
            if not math.isfinite(value):
                raise Diverged(f"the loss became {value} in epoch {epoch}, step {step}")
            return
        slot = self.next_slot
        self.next_slot = (slot + 1) % self.SLOTS
        self.host[slot].copy_(loss.detach(), non_blocking=True)
        self.events[slot].record()
        self.pending.append((slot, epoch, step))
        while len(self.pending) > 1:  # everything but the step just queued
            self._check_oldest()

    def _check_oldest(self) -> None:
        slot, epoch, step = self.pending.popleft()
        self.events[slot].synchronize()
        value = float(self.host[slot])
        if not math.isfinite(value):
            self.pending.clear()
            raise Diverged(f"the loss became {value} in epoch {epoch}, step {step}")

    def flush(self) -> None:
        while self.pending:
            self._check_oldest()
