"""The local backend: every run in this process, the runs of one dataset in lockstep."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

from lab.runs.record import RunRecord
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.training.backends.base import Backend, RunOptions
from lab.training.loop import train_experiment


class LocalBackend(Backend):
    """Trains with :func:`lab.training.loop.train_experiment`; ``lockstep`` False trains strictly one run after
    another instead of step by step together (the runs' numbers are the same either way)."""

    def __init__(self, lockstep: bool = True) -> None:
        self.lockstep = lockstep

    def describe(self) -> str:
        return "this machine"

    def run(self, configs: Sequence[RunConfig], store: RunStore, **options: Unpack[RunOptions]) -> list[RunRecord]:
        return train_experiment(configs, store, lockstep=self.lockstep, **options)
