"""Sweeps on a Ray cluster: one Ray task per run, the run's files written into the driver's run store.

The driver (the CLI, or the app's job thread) submits one task per config with the resources it asks
for: ``cpus_per_run`` CPUs, and ``gpus_per_run`` GPUs (default 1; 0.25 packs four small CNNs on a GPU)
when the device is ``cuda`` or ``auto`` and the cluster has GPUs. A worker needs no shared filesystem:
it loads the dataset from its own data folder, trains with :func:`lab.training.loop.train_run` into a
temporary run store, sends its progress through the sweep's :class:`lab.training.backends.channel.Channel`,
and returns the run's files as bytes; the driver writes them into its store with the same atomic
writes as a local run, the status last.

The driver creates a run's folder when a worker starts it (so a stopped sweep leaves no folders for
runs that never began), passes progress on with its own run ids, and reports a run's end only once
its files are written. Stop refuses further starts, cancels the tasks not yet started and tells
running ones to stop at their next report (they keep what they learned, as local runs do). A worker
that dies mid-run (process killed, node lost) is retried once by Ray; a second death marks the run
failed with a message, and the other runs go on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Unpack

import ray
import torch
from ray import exceptions as ray_errors

from lab.runs import contents
from lab.runs.io import RunWriteError
from lab.runs.record import RunRecord
from lab.runs.store import RunStore
from lab.runs.writer import RunWriter
from lab.settings.config import RunConfig
from lab.training.backends.base import Backend, BackendError, RunOptions
from lab.training.backends.channel import Channel
from lab.training.loop import TrainingProgress, train_run
from losses import plugins

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0  # seconds to reach a cluster's address before saying it is not reachable
PROGRESS_INTERVAL = 0.5  # a worker sends step progress at most this often; epoch and run ends always
POLL_SECONDS = 0.25  # how often the driver passes progress on


def _answer(ref: Any) -> Any:
    """The value of ``ref``, polled through its future rather than waited for in ``ray.get`` or
    ``ray.wait``: a task blocked in those lends its CPU back to the scheduler, which started another run
    on it (a 2-CPU cluster trained three runs at once)."""
    future = ref.future()
    while not future.done():
        time.sleep(0.01)
    return future.result()


class _Reporter:
    """A worker's progress callback: sends reports to the channel, sets ``stop`` when the sweep stops. A
    report is not waited for; the answer to the previous one (has the sweep stopped?) is read at the
    next, so a stop reaches the run within one report."""

    def __init__(self, channel: Any, index: int, stop: threading.Event) -> None:
        self.channel = channel
        self.index = index
        self.stop = stop
        self.last_sent = 0.0
        self.answer: Any = None

    def __call__(self, progress: TrainingProgress) -> None:
        now = time.monotonic()
        ends_something = progress.status is not None or progress.metrics is not None
        if self.answer is not None and self.answer.done() and self.answer.result():
            self.stop.set()
        if not ends_something and now - self.last_sent < PROGRESS_INTERVAL:
            return
        self.last_sent = now
        ref = self.channel.put.remote(self.index, pickle.dumps(progress))
        self.answer = ref.future()
        if progress.status is not None:  # the run's last report: it must arrive before the files do
            _answer(ref)


@ray.remote(max_retries=1, retry_exceptions=False)
def _train_task(
    config_data: dict[str, Any],
    index: int,
    n_runs: int,
    channel: Any,
    owner: str,
    threads: int,
    loss_modules: Sequence[str] = (),
) -> dict[str, bytes] | None:
    """Train run ``index`` on this worker and return its files; None when the sweep stopped before it began.
    ``loss_modules`` are the plug-in loss modules the driver loaded (its user named them), loaded here first
    so the worker has the same losses. A dataset or loss module this worker cannot load raises, and the
    driver marks the run failed with the message."""
    if not _answer(channel.start.remote(index, socket.gethostname(), os.getpid())):
        return None
    for source in loss_modules:
        plugins.load(source)
    torch.set_num_threads(threads)
    config = RunConfig.from_dict(config_data)
    stop = threading.Event()
    with tempfile.TemporaryDirectory(prefix="losslens-ray-") as folder:
        store = RunStore(folder)
        record = train_run(
            config,
            store,
            on_progress=_Reporter(channel, index, stop),
            stop=stop,
            run_index=index,
            n_runs=n_runs,
            owner=owner,
        )
        return store.read_files(record.run_id)


# The opening of an HTTP/2 connection (RFC 9113, 3.4): the client preface and an empty SETTINGS frame. Ray's
# GCS and its client server speak gRPC, so they answer with a SETTINGS frame of their own at once.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
HTTP2_SETTINGS = 4  # the frame type, the fourth byte of a frame's header


def _check_reachable(address: str) -> None:
    """Fail fast on a ``host:port`` (or ``ray://host:port``) that is not a Ray cluster: nothing listens there
    (Ray itself retries for minutes, logging from C++, before it gives up), or something else does (Ray
    then waits for an answer that never comes). A Ray cluster's port speaks gRPC, which answers the opening
    of an HTTP/2 connection within moments."""
    if address == "auto":
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise BackendError(
            f"ray address {address!r}: write it as HOST:PORT (e.g. 10.0.0.5:6379), ray://HOST:PORT or auto"
        )
    try:
        connection = socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT)
    except OSError as err:
        raise BackendError(
            f"Ray cluster at {address} is not reachable ({err}); start it (ray start --head) or check the address"
        ) from None
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):  # gRPC over TLS: the handshake comes first
        connection.close()
        return
    with connection:
        try:
            connection.sendall(HTTP2_PREFACE)
            answer = connection.recv(9)
        except OSError:  # a timeout, or the other side hung up
            answer = b""
    if len(answer) < 4 or answer[3] != HTTP2_SETTINGS:
        raise BackendError(
            f"{address} is not a Ray cluster: something listens there but did not answer as Ray does within "
            f"{CONNECT_TIMEOUT:g} s; check the address and port (a head node listens on 6379, or 10001 for ray://)"
        )


class _Reaper:
    """Ends a local Ray's processes when this process ends, even by SIGKILL (:mod:`lab.training.backends.reaper`): a
    watcher process in its own session notes this process's descendants while a pipe only this process holds
    is open, and ends them once it closes."""

    def __init__(self) -> None:
        read_end, self._write_end = os.pipe()  # neither end is inherited by what Ray starts (close-on-exec)
        try:
            self.process = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("reaper.py")), str(os.getpid())],
                stdin=read_end,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a signal to this process's group (Ctrl-C) leaves it watching
            )
        except BaseException:
            os.close(self._write_end)
            raise
        finally:
            os.close(read_end)
        with self.process.stdout:  # it has noted what ran before Ray: Ray's processes are all new to it
            if not self.process.stdout.readline():
                logger.warning("the watcher of the local Ray did not start; a killed run may leave Ray running")

    def close(self) -> None:
        """Let the watcher end what is left (nothing, after ``ray.shutdown()``) and wait for it."""
        if self._write_end >= 0:
            os.close(self._write_end)
            self._write_end = -1
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            logger.warning("the watcher of the local Ray (pid %d) did not end", self.process.pid)


def _cause(err: Exception) -> str:
    """The worker's own error message inside a Ray task error."""
    cause = getattr(err, "cause", None)
    return str(cause) if isinstance(cause, BaseException) else str(err).strip().splitlines()[-1]


class RayBackend(Backend):
    """Runs on a Ray cluster at ``address``, or on a local Ray of ``num_cpus`` CPUs (default: all) started
    on entry and shut down on exit. When Ray is already initialized in this process, that connection is
    used and left open."""

    def __init__(
        self,
        address: str | None = None,
        *,
        cpus_per_run: float = 1.0,
        gpus_per_run: float | None = None,
        num_cpus: int | None = None,
    ) -> None:
        if not cpus_per_run > 0:
            raise BackendError(f"cpus per run: must be above 0, got {cpus_per_run}")
        if gpus_per_run is not None and not 0 <= gpus_per_run <= 8:
            raise BackendError(
                f"gpus per run: must be a number from 0 to 8 (0.25: four runs per GPU), got {gpus_per_run}"
            )
        self.address = address
        self.cpus_per_run = cpus_per_run
        self.gpus_per_run = gpus_per_run
        self.num_cpus = num_cpus
        self.started_here = False
        self.reaper: _Reaper | None = None
        self.workers: dict[int, tuple[str, int]] = {}  # run index -> (host, pid) of the worker training it

    def __enter__(self) -> RayBackend:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        """Connect to the cluster, or start a local Ray whose processes end with this one however it ends (a
        :class:`_Reaper` watches); :class:`BackendError` when that fails."""
        if ray.is_initialized():
            return
        quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
        try:
            if self.address:
                _check_reachable(self.address)
                ray.init(address=self.address, **quiet)
            else:
                self.reaper = _Reaper()
                ray.init(num_cpus=self.num_cpus or os.cpu_count(), include_dashboard=False, **quiet)
                self.started_here = True
        except BackendError:
            self._stop_reaper()
            raise
        except Exception as err:  # Ray raises ConnectionError, RuntimeError, ValueError...
            self._stop_reaper()
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
            raise BackendError(f"could not connect to {where}: {type(err).__name__}: {err}") from None
        logger.info("Ray: %s", self.describe())

    def close(self) -> None:
        """Shut down the local Ray this backend started (a cluster it connected to keeps running)."""
        if self.started_here:
            ray.shutdown()
            self.started_here = False
        self._stop_reaper()

    def _stop_reaper(self) -> None:
        if self.reaper is not None:
            self.reaper.close()
            self.reaper = None

    def resources(self) -> dict[str, float]:
        """The cluster's total CPUs and GPUs, e.g. ``{"CPU": 16.0, "GPU": 2.0}``."""
        total = ray.cluster_resources()
        return {"CPU": float(total.get("CPU", 0.0)), "GPU": float(total.get("GPU", 0.0))}

    def describe(self) -> str:
        found = self.resources() if ray.is_initialized() else {}
        where = f"Ray cluster at {self.address}" if self.address else "a local Ray"
        if not found:
            return where
        return f"{where}: {found['CPU']:g} CPUs, {found['GPU']:g} GPUs"

    def _placement(self, config: RunConfig, gpus_in_cluster: float) -> tuple[RunConfig, float]:
        """The config a worker trains and the GPUs its task asks for. Without a GPU an ``auto`` run is
        sent as a CPU run, so a worker on a GPU node never uses a GPU Ray did not give it."""
        if config.device not in ("cuda", "auto") or gpus_in_cluster == 0 or self.gpus_per_run == 0:
            if config.device == "cuda":
                raise BackendError(
                    "device cuda: the Ray cluster has no GPUs to give (or --gpus-per-run is 0); choose auto or cpu"
                )
            return (config.replace(device="cpu") if config.device == "auto" else config), 0.0
        gpus = 1.0 if self.gpus_per_run is None else self.gpus_per_run
        if gpus > gpus_in_cluster:
            raise BackendError(f"gpus per run: {gpus:g} asked, the Ray cluster has {gpus_in_cluster:g}")
        return config, gpus

    def run(self, configs: Sequence[RunConfig], store: RunStore, **options: Unpack[RunOptions]) -> list[RunRecord]:
        """Every config as a Ray task; connects first if the backend was not entered."""
        if not ray.is_initialized():
            with self:
                return self.run(configs, store, **options)
        owner, stop = options.get("owner", ""), options.get("stop")
        on_progress = options.get("on_progress") or (lambda progress: None)
        for config in configs:
            config.validate()
        found = self.resources()
        if self.cpus_per_run > found["CPU"]:
            raise BackendError(f"cpus per run: {self.cpus_per_run:g} asked, the Ray cluster has {found['CPU']:g}")
        placed = [self._placement(config, found["GPU"]) for config in configs]
        channel = Channel.remote()
        threads = max(1, int(self.cpus_per_run))
        modules = plugins.loaded_sources()
        tasks = {
            _train_task.options(num_cpus=self.cpus_per_run, num_gpus=gpus).remote(
                config.to_dict(), index, len(placed), channel, owner, threads, modules
            ): index
            for index, (config, gpus) in enumerate(placed)
        }
        sweep = _Sweep([config for config, _ in placed], store, owner, on_progress)
        logger.info("Ray: %d runs submitted to %s", len(tasks), self.describe())
        pending = list(tasks)
        stopping = False
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_SECONDS)
                sweep.deliver(ray.get(channel.take.remote()), self.workers)
                for ref in done:
                    sweep.finish(tasks[ref], ref)
                if stop is not None and stop.is_set() and not stopping:
                    stopping = True
                    started = set(ray.get(channel.stop.remote()))
                    for ref in pending:
                        if tasks[ref] not in started:
                            ray.cancel(ref)
                    logger.info("Ray: stopped; %d runs had not started", len(set(tasks.values()) - started))
        except BaseException as err:  # a full disk, an interrupt: no run folder may stay "running"
            sweep.end_unfinished(f"the sweep ended before this run did ({type(err).__name__}: {err})")
            raise
        finally:
            for ref in pending:  # only on an error or an interrupt here: do not leave tasks training
                ray.cancel(ref, force=True)
            ray.kill(channel)
        return sweep.records()


class _Sweep:
    """The driver's side of one sweep: run folders, progress with the store's run ids, finished files."""

    def __init__(
        self, configs: list[RunConfig], store: RunStore, owner: str, on_progress: Callable[[TrainingProgress], None]
    ) -> None:
        self.configs = configs
        self.store = store
        self.owner = owner
        self.on_progress = on_progress
        self.writers: dict[int, RunWriter] = {}
        self.attempts: dict[int, int] = {}
        self.hosts: dict[int, str] = {}
        self.endings: dict[int, TrainingProgress] = {}  # a run's last report, passed on once its files are written
        self.ended: set[int] = set()  # runs whose folders hold how they ended

    def deliver(self, messages: list[tuple[str, int, Any]], workers: dict[int, tuple[str, int]]) -> None:
        for kind, index, payload in messages:
            if kind == "start":
                workers[index] = payload
                self._started(index, payload[0])
                continue
            progress = dataclasses.replace(pickle.loads(payload), run_id=self.writers[index].run_id)
            if progress.status is not None:
                self.endings[index] = progress
            else:
                self.on_progress(progress)

    def _started(self, index: int, host: str) -> None:
        self.attempts[index] = self.attempts.get(index, 0) + 1
        self.hosts[index] = host
        if index not in self.writers:
            self.writers[index] = self.store.create(self.configs[index], owner=self.owner)
            self.writers[index].set_status("running", message=f"training on Ray worker {host}")
        else:
            message = f"retrying on Ray worker {host}: the worker that trained it died"
            self.writers[index].set_status("running", message=message, attempts=self.attempts[index])
        logger.info("run %d started on %s (attempt %d)", index, host, self.attempts[index])

    def finish(self, index: int, ref: Any) -> None:
        """Write a finished task's files, or mark its run failed, and report the run's end."""
        try:
            files = ray.get(ref)
        except ray_errors.TaskCancelledError:
            files = None
        except ray_errors.RayTaskError as err:  # the worker's own error, e.g. a dataset it does not have
            self._fail(index, f"on Ray worker {self.hosts.get(index, '?')}: {_cause(err)}")
            return
        except ray_errors.RayError as err:  # the worker process or its node died, on the retry too
            self._fail(
                index,
                f"the Ray worker training it died ({type(err).__name__}), and so did its retry; the other runs went on",
            )
            return
        if files is None:  # stopped before it began (or before its retry began)
            if index in self.writers:
                self.writers[index].set_status("stopped", message="stopped before it began", finished=time.time())
                self._report_end(index, "stopped", "stopped before it began")
            return
        if self.attempts.get(index, 1) > 1:
            files = self._note_retry(index, files)
        record = self.store.import_files(self.writers[index].run_id, files)
        self.ended.add(index)
        ending = self.endings.pop(index, None)
        if ending is not None:
            self.on_progress(ending)
        else:
            self._report_end(index, record.state, record.status.get("message", ""))

    def _note_retry(self, index: int, files: dict[str, bytes]) -> dict[str, bytes]:
        """The files with the status saying the run was retried after its first worker died."""
        status = json.loads(files[contents.STATUS])
        status["attempts"] = self.attempts[index]
        status["message"] = f"{status.get('message', '')} (retried: the Ray worker that first trained it died)"
        return {**files, contents.STATUS: (json.dumps(status, indent=1, sort_keys=True) + "\n").encode()}

    def _fail(self, index: int, message: str) -> None:
        if index not in self.writers:  # died before it could say it started
            self.writers[index] = self.store.create(self.configs[index], owner=self.owner)
        self.writers[index].set_status("failed", message=message, finished=time.time())
        logger.error("run %s failed: %s", self.writers[index].run_id, message)
        self._report_end(index, "failed", message)

    def end_unfinished(self, message: str) -> None:
        """Mark every run whose folder exists but has not ended failed with ``message`` (where even that
        cannot be written, this process's readers report it failed)."""
        for index, writer in self.writers.items():
            if index in self.ended:
                continue
            try:
                writer.set_status("failed", message=message, finished=time.time())
            except RunWriteError as err:
                logger.error("run %s: %s, and that could not be written: %s", writer.run_id, message, err)

    def _report_end(self, index: int, status: str, message: str) -> None:
        self.ended.add(index)
        config = self.configs[index]
        run_id = self.writers[index].run_id
        self.on_progress(
            TrainingProgress(
                run_id, config.loss, index, len(self.configs), 0, config.epochs, 0, 1, status=status, message=message
            )
        )

    def records(self) -> list[RunRecord]:
        return [self.store.load(self.writers[index].run_id) for index in sorted(self.writers)]
