"""Memory: peak resident memory of a five-loss experiment on Fashion-MNIST.

    python -m bench.memory           # the five default losses on all of Fashion-MNIST, 1 epoch each
    python -m bench.memory --quick   # the same on digits (CI)

The experiment runs in a fresh child process (``python -m bench.memory --child``) so that nothing
this process holds is counted. The child reports its resident memory after the imports, after
loading the dataset (the raw uint8 images plus the normalised float32 copy the trainer slices), and
its peak (``VmHWM``) after training the five default losses of the Train form with
``train_experiment``, once one run after another (``one_by_one``) and once step by step together
(``lockstep``: five models, optimizers and evaluation copies held at once). Memory does not grow with
the number of epochs (only the per-epoch feature snapshots of 500 test points do), so one epoch per loss
measures the same peak as the defaults.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import Report, parser, resolve

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LOSSES = ("softmax", "lsoftmax", "amc", "opl", "lmd")


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory (``VmRSS``) or its peak (``VmHWM``) in MB, from /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def child(dataset_name: str, device: str, quick: bool, lockstep: bool) -> None:
    """Train the experiment and print one JSON line of memory figures."""
    import losses  # noqa: F401
    from lab.datasets import load_dataset
    from lab.runs.store import RunStore
    from lab.settings.config import RunConfig
    from lab.training.loop import train_experiment

    figures = {"after_imports": rss_mb()}
    dataset = load_dataset(dataset_name)
    dataset.train.normalized, dataset.test.normalized  # noqa: B018  (what the trainer uses)
    figures["after_data"] = rss_mb()
    base = RunConfig(dataset=dataset_name, epochs=1, device=device, experiment="memory")
    if quick:
        base = base.replace(train_limit=64, snapshot_points=10)
    configs = [base.replace(loss=loss) for loss in DEFAULT_LOSSES]
    records = train_experiment(configs, RunStore(tempfile.mkdtemp(prefix="losslens-bench-")), lockstep=lockstep)
    figures["after_training"] = rss_mb()
    figures["peak"] = rss_mb("VmHWM")
    figures["states"] = [r.state for r in records]
    print(json.dumps(figures), flush=True)


def main(argv: list[str] | None = None) -> Report:
    parse = parser(__doc__.splitlines()[0])
    parse.add_argument("--child", default="", help=argparse_hidden())
    parse.add_argument("--child-lockstep", action="store_true", help=argparse_hidden())
    args = parse.parse_args(argv)
    if args.child:
        child(args.child, args.device, args.quick, args.child_lockstep)
        return None  # type: ignore[return-value]
    device = resolve(args.device)
    dataset_name = "digits" if args.quick else "fashion-mnist"
    report = Report("memory", args, device, f"{dataset_name}, losses {', '.join(DEFAULT_LOSSES)}, 1 epoch each")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for arm, lockstep in (("one_by_one", False), ("lockstep", True)):
        done = subprocess.run(
            [sys.executable, "-m", "bench.memory", "--child", dataset_name, "--device", args.device, "--results", "-"]
            + (["--quick"] if args.quick else [])
            + (["--child-lockstep"] if lockstep else []),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"the memory child failed ({done.returncode}): {done.stderr[-2000:]}")
        figures = json.loads(lines[-1])
        how = "trained step by step together" if lockstep else "trained one after another"
        report.figure(f"{arm}/after_imports", figures["after_imports"], "MB", note="RSS")
        report.figure(
            f"{arm}/after_data", figures["after_data"], "MB", note=f"RSS, {dataset_name} loaded and normalised"
        )
        report.figure(f"{arm}/after_training", figures["after_training"], "MB", note="RSS")
        report.figure(
            f"{arm}/peak", figures["peak"], "MB", note=f"VmHWM, five losses {how}: {', '.join(figures['states'])}"
        )
    report.write()
    return report


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
