"""The interface every backend implements, its options and its error."""

from __future__ import annotations

import abc
import os
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Self, TypedDict, Unpack

if TYPE_CHECKING:
    from lab.runs.record import RunRecord
    from lab.runs.store import RunStore
    from lab.settings.config import RunConfig
    from lab.training.loop import TrainingProgress

BACKENDS = ("local", "ray")
RAY_ADDRESS_ENV = "LOSSLENS_RAY_ADDRESS"


class BackendError(ValueError):
    """A backend cannot run: Ray is not installed or not reachable, or lacks what the runs ask for."""


class RunOptions(TypedDict, total=False):
    """The keywords of :meth:`Backend.run`, each optional: ``on_progress`` is called with every
    :class:`lab.training.loop.TrainingProgress`, ``stop`` stops the runs once it is set, and ``owner`` owns the run
    folders written (default: no owner)."""

    on_progress: Callable[[TrainingProgress], None] | None
    stop: threading.Event | None
    owner: str


class Backend(abc.ABC):
    """What the CLI (and the app's jobs) train through. Entering and leaving do nothing unless a backend
    has something to connect to and let go of."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the runs train, in words: ``this machine``, ``Ray cluster at ADDRESS: 16 CPUs, 2 GPUs``."""

    @abc.abstractmethod
    def run(self, configs: Sequence[RunConfig], store: RunStore, **options: Unpack[RunOptions]) -> list[RunRecord]:
        """Train ``configs`` into ``store`` and return the records of the runs that started, in the order of
        ``configs`` (a stop keeps the others from starting)."""


def ray_address(address: str | None = None) -> str | None:
    """The Ray cluster to use: ``address``, else ``$LOSSLENS_RAY_ADDRESS``, else None (start a local Ray)."""
    return address or os.environ.get(RAY_ADDRESS_ENV) or None
