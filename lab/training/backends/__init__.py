"""Where an experiment's runs train: one interface, two backends.

* ``local`` (:class:`lab.training.backends.local.LocalBackend`): this process
  (:func:`lab.training.loop.train_experiment`: the runs of one dataset in lockstep, each computing exactly what
  it computes alone).
* ``ray`` (:class:`lab.training.backends.ray_cluster.RayBackend`): one Ray task per run on a Ray cluster (or a
  local Ray started for the sweep), progress streamed back, the run's files written into the driver's
  run store.

Both subclass :class:`Backend`, which declares the interface once. A backend is a context manager: entering it
connects (a Ray cluster that cannot be reached is a :class:`BackendError` before anything starts), leaving it lets
go of what it started. ``run(configs, store, on_progress=..., stop=..., owner=...)`` trains and returns the runs'
records, reporting :class:`lab.training.loop.TrainingProgress` with the store's run ids as a local run does.

The package imports neither torch nor Ray (the backends load them when made), so the Ray workers' message
channel can live in it.
"""

from __future__ import annotations

from typing import Any

from lab.training.backends.base import BACKENDS, RAY_ADDRESS_ENV, Backend, BackendError, RunOptions, ray_address
from lab.training.backends.probe import cluster_resources

__all__ = [
    "BACKENDS",
    "RAY_ADDRESS_ENV",
    "Backend",
    "BackendError",
    "RunOptions",
    "cluster_resources",
    "make_backend",
    "ray_address",
]


def make_backend(name: str = "local", address: str | None = None, **options: Any) -> Backend:
    """The backend called ``name``. ``options``: the local backend's ``lockstep``; the Ray backend's
    ``cpus_per_run``, ``gpus_per_run`` and ``num_cpus`` (``address`` is the Ray cluster's)."""
    if name == "local":
        from lab.training.backends.local import LocalBackend

        return LocalBackend(**options)
    if name == "ray":
        try:
            from lab.training.backends.ray_cluster import RayBackend
        except ImportError as err:
            raise BackendError(f"backend ray: Ray is not installed ({err}); pip install ray") from None
        return RayBackend(ray_address(address), **options)
    raise BackendError(f"backend: must be one of {', '.join(BACKENDS)}, got {name!r}")
