"""Asking a Ray cluster what it has (CPUs, GPUs) on a thread of its own, with a time limit, so a page never waits
on an address that does not answer."""

from __future__ import annotations

import threading
import time

from lab.training.backends.base import BackendError

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
            from lab.training.backends.ray_cluster import RayBackend

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
