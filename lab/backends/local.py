"""The local backend: every run in this process, one after another (what LossLens always did)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from lab.config import RunConfig
from lab.runstore import RunRecord, RunStore
from lab.trainer import Progress, train_experiment


class LocalBackend:
    """Trains with :func:`lab.trainer.train_experiment`; ``fused`` False trains strictly one run after
    another instead of stacking the runs that can train together (:mod:`lab.fused`)."""

    def __init__(self, fused: bool = True) -> None:
        self.fused = fused

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def describe(self) -> str:
        return "this machine"

    def run(
        self,
        configs: Sequence[RunConfig],
        store: RunStore,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        stop: threading.Event | None = None,
        owner: str = "",
    ) -> list[RunRecord]:
        return train_experiment(configs, store, on_progress=on_progress, stop=stop, owner=owner, fused=self.fused)
