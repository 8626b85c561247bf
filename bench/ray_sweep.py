"""Ray sweep: an 8-run sweep trained locally one run after another and on a Ray cluster on the same machine.

    python -m bench.ray_sweep           # digits 8x8, 3 epochs per run
    python -m bench.ray_sweep --quick   # 1 epoch per run (CI)

The sweep is 2 variants x 4 seeds (softmax and L-Softmax m=4, ``small``, 2-D features) on digits, the
dataset every machine has. Three arms, back to back in one process, each into its own runs folder:

* ``local``: :class:`lab.training.backends.local.LocalBackend` with ``lockstep=False``: one run after another,
  torch using every core;
* ``local-lockstep``: the local backend as the CLI and the app use it, the runs step by step together;
* ``ray-one-at-a-time``: a local Ray of every core, each task asking for every CPU, so the runs also go
  one after another with the same thread count: the difference to ``local``, per run, is what Ray adds
  (scheduling, a worker process, sending progress and the run's files back, writing them);
* ``ray-parallel``: the same cluster, one CPU per task, so as many runs train at once as there are cores.

Starting the local Ray is timed on its own (a cluster that is already up costs nothing); the first Ray
arm also pays for starting its worker processes (importing torch, loading the dataset), as a real sweep
does. The bytes a run sends back are the sum of its files' sizes; a worker's memory is its peak resident
set (VmHWM) after the sweep.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.common import Report, parser, resolve
from lab.runs.record import RunRecord
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.settings.experiment import make_experiment
from lab.training.backends import make_backend
from lab.training.backends.base import Backend

VARIANTS = ("softmax", "lsoftmax:margin=4")
SEEDS = (0, 1, 2, 3)


def sweep(epochs: int) -> list[RunConfig]:
    return make_experiment(RunConfig(dataset="digits", epochs=epochs, device="cpu"), list(VARIANTS), seeds=list(SEEDS))


def timed_sweep(backend: Backend, configs: list[RunConfig], root: Path) -> tuple[float, list[RunRecord]]:
    """Seconds to train ``configs`` on ``backend`` into a fresh runs folder, and the records."""
    store = RunStore(root)
    started = time.perf_counter()
    records = backend.run(configs, store)
    seconds = time.perf_counter() - started
    failed = [r for r in records if r.state != "finished"]
    if len(records) != len(configs) or failed:
        raise RuntimeError(f"the sweep did not finish: {[(r.run_id, r.state, r.message) for r in failed]}")
    return seconds, records


def peak_memory_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM), in MB; 0 when it has gone (Linux only)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0.0)


def main(argv: list[str] | None = None) -> Report:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    device = resolve("cpu")
    epochs = 1 if args.quick else 3
    cores = os.cpu_count() or 1
    configs = sweep(epochs)
    report = Report(
        "ray_sweep",
        args,
        device,
        f"{len(configs)} runs ({', '.join(VARIANTS)} x seeds {', '.join(map(str, SEEDS))}), digits 8x8, small, "
        f"2-D, {epochs} epochs each; local Ray of {cores} CPUs",
    )
    with tempfile.TemporaryDirectory(prefix="losslens-ray-sweep-") as folder:
        root = Path(folder)
        with make_backend("local", lockstep=False) as local:
            local_seconds, records = timed_sweep(local, configs, root / "local")
        with make_backend("local") as local_lockstep:
            lockstep_seconds, _ = timed_sweep(local_lockstep, configs, root / "local-lockstep")
        run_bytes = [sum(path.stat().st_size for path in r.run_dir.iterdir() if path.is_file()) for r in records]
        started = time.perf_counter()
        with make_backend("ray", num_cpus=cores, cpus_per_run=cores) as whole_cluster_per_run:
            startup = time.perf_counter() - started
            one_at_a_time, _ = timed_sweep(whole_cluster_per_run, configs, root / "ray-one-at-a-time")
            # a second backend on the same connection: it neither starts nor stops a cluster
            one_cpu_per_run = make_backend("ray", cpus_per_run=1)
            parallel, _ = timed_sweep(one_cpu_per_run, configs, root / "ray-parallel")
            worker_peaks = [peak_memory_mb(pid) for _, pid in one_cpu_per_run.workers.values()]
            stopping = time.perf_counter()
        shutdown = time.perf_counter() - stopping
    n = len(configs)
    report.figure("local/sweep", local_seconds, "s", note=f"{n} runs one after another, {cores} torch threads")
    report.figure("local-lockstep/sweep", lockstep_seconds, "s", note="the runs step by step together")
    report.figure("ray/startup", startup, "s", note=f"ray.init of a local cluster with {cores} CPUs")
    report.figure("ray-one-at-a-time/sweep", one_at_a_time, "s", note="first Ray arm: includes starting workers")
    report.figure("ray-parallel/sweep", parallel, "s", note=f"{cores} runs at once, 1 thread each")
    report.figure("ray/shutdown", shutdown, "s")
    report.figure(
        "ray/overhead_per_run", (one_at_a_time - local_seconds) / n, "s", note="one-at-a-time minus local, per run"
    )
    report.figure("ray-parallel/speedup", local_seconds / parallel, "x", note="local sweep / parallel Ray sweep")
    report.figure(
        "ray-parallel/speedup_with_startup",
        local_seconds / (startup + parallel + shutdown),
        "x",
        note="counting the local cluster's start and shutdown",
    )
    report.figure(
        "run/bytes_returned", sum(run_bytes) / n / 1e6, "MB", note="a run's files, sent from worker to driver"
    )
    if worker_peaks:
        report.figure("ray/worker_peak_memory", max(worker_peaks), "MB", note="VmHWM of the busiest worker process")
    report.write()
    return report


if __name__ == "__main__":
    main()
