"""Where an experiment's runs train: one interface, two backends.

* ``local`` (:class:`lab.backends.local.LocalBackend`): this process (:func:`lab.trainer.train_experiment`:
  the runs of one dataset in lockstep, each computing exactly what it computes alone).
* ``ray`` (:class:`lab.backends.ray_cluster.RayBackend`): one Ray task per run on a Ray cluster (or a
  local Ray started for the sweep), progress streamed back, the run's files written into the driver's
  run store.

Both subclass :class:`Backend`, which declares the interface once. A backend is a context manager:
entering it connects (a Ray cluster that cannot be reached is a :class:`BackendError` before anything
starts), leaving it lets go of what it started. ``run(configs, store, on_progress=..., stop=..., owner=...)``
trains and returns the runs' records, reporting :class:`lab.trainer.Progress` with the store's run ids as a
local run does.

This module imports neither torch nor Ray, so the Ray workers' message channel can live in the package.
"""

from __future__ import annotations

import abc
import os
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Self, TypedDict, Unpack

if TYPE_CHECKING:
    from lab.config import RunConfig
    from lab.runstore import RunRecord, RunStore
    from lab.trainer import Progress

BACKENDS = ("local", "ray")
RAY_ADDRESS_ENV = "LOSSLENS_RAY_ADDRESS"


class BackendError(ValueError):
    """A backend cannot run: Ray is not installed or not reachable, or lacks what the runs ask for."""


class RunOptions(TypedDict, total=False):
    """The keywords of :meth:`Backend.run`, each optional: ``on_progress`` is called with every
    :class:`lab.trainer.Progress`, ``stop`` stops the runs once it is set, and ``owner`` owns the run
    folders written (default: no owner)."""

    on_progress: Callable[[Progress], None] | None
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


def make_backend(name: str = "local", address: str | None = None, **options: Any) -> Backend:
    """The backend called ``name``. ``options``: the local backend's ``lockstep``; the Ray backend's
    ``cpus_per_run``, ``gpus_per_run`` and ``num_cpus`` (``address`` is the Ray cluster's)."""
    if name == "local":
        from lab.backends.local import LocalBackend

        return LocalBackend(**options)
    if name == "ray":
        try:
            from lab.backends.ray_cluster import RayBackend
        except ImportError as err:
            raise BackendError(f"backend ray: Ray is not installed ({err}); pip install ray") from None
        return RayBackend(ray_address(address), **options)
    raise BackendError(f"backend: must be one of {', '.join(BACKENDS)}, got {name!r}")


def cluster_resources(address: str) -> dict[str, float]:
    """The CPUs and GPUs of the Ray cluster at ``address`` (``{"CPU": 16.0, "GPU": 2.0}``), for the Train
    page to show before anything starts. It connects this process to the cluster and stays connected, so
    the sweep that follows reuses the connection; :class:`BackendError` when Ray is missing or the cluster
    cannot be reached."""
    try:
        from lab.backends.ray_cluster import RayBackend
    except ImportError as err:
        raise BackendError(f"backend ray: Ray is not installed ({err}); pip install ray") from None
    backend = RayBackend(address)
    backend.connect()
    return backend.resources()
