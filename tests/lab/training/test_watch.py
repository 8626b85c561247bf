"""The divergence watch on the accelerator path: a non-finite loss is named at its exact step one step later,
without a per-step sync, and a divergence in the last step is found on flush."""

from __future__ import annotations

import pytest
import torch

from lab.training.watch import Diverged, LossWatch


class _FakeEvent:
    def record(self) -> None:
        pass

    def synchronize(self) -> None:
        pass


class _CpuLaggedWatch(LossWatch):
    """The accelerator path (read one step late) with CPU buffers, so it runs without a GPU."""

    def _buffers(self):
        return torch.empty(self.SLOTS), [_FakeEvent() for _ in range(self.SLOTS)]


def test_the_lagged_loss_watch_names_the_exact_step_one_step_later():
    watch = _CpuLaggedWatch(torch.device("cpu"), lagged=True)
    for step in (1, 2, 3):
        watch.record(torch.tensor(1.0), 1, step)
    watch.record(torch.tensor(float("nan")), 1, 4)  # not read yet: the device would still be busy
    with pytest.raises(Diverged, match="epoch 1, step 4"):
        watch.record(torch.tensor(1.0), 1, 5)


def test_the_lagged_loss_watch_finds_a_last_step_divergence_on_flush():
    watch = _CpuLaggedWatch(torch.device("cpu"), lagged=True)
    watch.record(torch.tensor(1.0), 2, 1)
    watch.record(torch.tensor(float("inf")), 2, 2)
    with pytest.raises(Diverged, match="the loss became inf in epoch 2, step 2"):
        watch.flush()
    watch.flush()  # nothing left
