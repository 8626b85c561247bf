"""The local backend: every run in this process, one after another (what LossLens always did)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

from lab.backends import Backend, RunOptions
from lab.config import RunConfig
from lab.runstore import RunRecord, RunStore
from lab.trainer import train_experiment


class LocalBackend(Backend):
    """Trains with :func:`lab.trainer.train_experiment`; ``fused`` False trains strictly one run after
    another instead of stacking the runs that can train together (:mod:`lab.fused`)."""

    def __init__(self, fused: bool = True) -> None:
        self.fused = fused

    def describe(self) -> str:
        return "this machine"

    def run(self, configs: Sequence[RunConfig], store: RunStore, **options: Unpack[RunOptions]) -> list[RunRecord]:
        return train_experiment(configs, store, fused=self.fused, **options)
