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
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Self, TypedDict, Unpack

if TYPE_CHECKING:
    from lab.settings.config import RunConfig
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


PROBE_SECONDS = 30.0  # a Ray cluster that has not answered in this long is reported as not answering
PROBE_REFRESH_SECONDS = 30.0  # a cluster's resources are asked again when the last answer is this old
PROBE_WAIT_SECONDS = 1.0  # the most a caller (a page) waits for the answer before it is told to ask later


class _Probe:
    """One question to the Ray cluster at ``address`` (connect, then read its CPUs and GPUs), asked on its
    own thread: connecting to an address that is not a Ray cluster can take minutes."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.started = time.monotonic()
        self.finished = 0.0
        self.done = threading.Event()
        self.resources: dict[str, float] = {}
        self.error: BackendError | None = None
        threading.Thread(target=self._ask, name="losslens-ray-probe", daemon=True).start()

    def _ask(self) -> None:
        try:
            from lab.backends.ray_cluster import RayBackend

            backend = RayBackend(self.address)
            backend.connect()
            self.resources = backend.resources()
        except ImportError as err:
            self.error = BackendError(f"backend ray: Ray is not installed ({err}); pip install ray")
        except BackendError as err:
            self.error = err
        except Exception as err:  # whatever Ray raises while connecting or asking
            self.error = BackendError(f"the Ray cluster at {self.address}: {type(err).__name__}: {err}")
        finally:
            self.finished = time.monotonic()
            self.done.set()


_probes: dict[str, tuple[_Probe | None, _Probe | None]] = {}  # address -> (last answered, still asking)
_probes_lock = threading.Lock()


def cluster_resources(address: str, wait: float = PROBE_WAIT_SECONDS) -> dict[str, float]:
    """The CPUs and GPUs of the Ray cluster at ``address`` (``{"CPU": 16.0, "GPU": 2.0}``), for the Train
    page to show before anything starts; :class:`BackendError` when Ray is missing, the cluster cannot be
    reached or is not a Ray cluster, or has not answered yet.

    The question is asked on a thread of its own and this call waits at most ``wait`` seconds for it, so a
    page is never held up by an address that does not answer: it is told that the cluster is still being
    asked, and a later call gets the answer. An answer is kept for :data:`PROBE_REFRESH_SECONDS`. Connecting
    leaves this process connected, so the sweep that follows reuses the connection."""
    with _probes_lock:
        answered, asking = _probes.get(address, (None, None))
        if asking is not None and asking.done.is_set():
            answered, asking = asking, None
        stale = answered is None or time.monotonic() - answered.finished > PROBE_REFRESH_SECONDS
        if asking is None and stale:
            asking = _Probe(address)
        _probes[address] = (answered, asking)
    if asking is not None and asking.done.wait(wait):
        answered = asking
    if answered is None:
        elapsed = time.monotonic() - asking.started
        if elapsed > PROBE_SECONDS:
            raise BackendError(
                f"the Ray cluster at {address} has not answered in {elapsed:.0f} s: check that it runs and that the "
                "address is right"
            )
        raise BackendError(f"still asking the Ray cluster at {address} what it has; look again in a moment")
    if answered.error is not None:
        raise answered.error
    return dict(answered.resources)
