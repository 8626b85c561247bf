"""What every benchmark shares: command-line options, the machine header, timing helpers, and the
report that prints each figure and appends it to ``bench/RESULTS.md``.

A figure line looks like ``FIGURE throughput/small/ratio: 1.62 x (target >= 1.5: met)`` on stdout, so a
log (or a test) can find every figure with ``grep FIGURE``. The RESULTS.md section repeats them in a
table under a header naming the machine (CPU, cores, threads, torch version, device) and the load
average when the benchmark started: the timing figures only mean something next to that.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
RESULTS_ENV = "LOSSLENS_BENCH_RESULTS"


def parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes."""
    parse = argparse.ArgumentParser(description=description)
    parse.add_argument("--quick", action="store_true", help="CI size: tiny data and few repetitions (seconds)")
    parse.add_argument(
        "--results",
        default=os.environ.get(RESULTS_ENV, str(RESULTS)),
        help=f"markdown file the figures are appended to (default {RESULTS.name}, or ${RESULTS_ENV}); '-' for none",
    )
    parse.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    return parse


def parse_sections(
    parse: argparse.ArgumentParser, argv: list[str] | None, sections: Sequence[str], default: str = "all"
) -> tuple[argparse.Namespace, list[str]]:
    """``argv`` parsed with a ``--sections`` option added: the options and the chosen ``sections`` in the
    order given (an unknown one ends the program with a usage message). ``default`` describes the default,
    every section, in the help."""
    choices = ", ".join(sections)
    help_text = f"comma-separated, from {choices} (default: {default})"
    parse.add_argument("--sections", default=",".join(sections), help=help_text)
    args = parse.parse_args(argv)
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(sections))
    if unknown:
        parse.error(f"--sections: unknown {', '.join(unknown)} (choose from {choices})")
    return args, chosen


def resolve(device: str) -> torch.device:
    from lab.settings.device import resolve_device

    return resolve_device(device)


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what the platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def load_average() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def machine(device: torch.device) -> dict[str, str]:
    """The header of every result: what the figures were measured on."""
    return {
        "cpu": cpu_name(),
        "cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": device_name(device),
        "load average (1/5/15 min) at start": load_average(),
    }


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> float:
    """Sample standard deviation (0 for fewer than two values)."""
    return float(statistics.stdev(values)) if len(values) > 1 else 0.0


def timed(fn: Callable[[], Any], device: torch.device | None = None) -> tuple[float, Any]:
    """Seconds ``fn()`` takes (waiting for the device's queued work at both ends) and its result."""
    synchronize(device)
    started = time.perf_counter()
    result = fn()
    synchronize(device)
    return time.perf_counter() - started, result


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch on ``count`` threads inside the block (a fixed count makes CPU timings comparable between
    machines), on as many as before after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def synchronize(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device is not None and device.type == "mps":
        torch.mps.synchronize()


@dataclasses.dataclass
class Figure:
    name: str
    value: float | str
    unit: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""

    def text(self) -> str:
        value = self.value if isinstance(self.value, str) else f"{self.value:.4g}"
        line = f"{self.name}: {value}{' ' + self.unit if self.unit else ''}"
        if self.target:
            verdict = "" if self.met is None else (": met" if self.met else ": NOT met")
            line += f" (target {self.target}{verdict})"
        if self.note:
            line += f" [{self.note}]"
        return line


class Report:
    """Collects one benchmark's figures; prints each as it comes and writes them all at the end."""

    def __init__(self, benchmark: str, args: argparse.Namespace, device: torch.device, settings: str = "") -> None:
        self.benchmark = benchmark
        self.args = args
        self.device = device
        self.settings = settings
        self.header = machine(device)
        self.figures: list[Figure] = []
        self.notes: list[str] = []
        self.tables: list[str] = []
        self.figures_in_markdown = True
        self.started = time.time()
        mode = "quick" if args.quick else "full"
        print(
            f"# {benchmark} ({mode}) on {self.header['cpu']}, {self.header['cores']} cores, "
            f"torch {self.header['torch']}, {self.header['device']}, load {self.header[next(reversed(self.header))]}"
        )
        if settings:
            print(f"# settings: {settings}")
        sys.stdout.flush()

    def figure(
        self,
        name: str,
        value: float | str,
        unit: str = "",
        *,
        target: str = "",
        met: bool | None = None,
        note: str = "",
    ) -> Figure:
        figure = Figure(f"{self.benchmark}/{name}", value, unit, target, met, note)
        self.figures.append(figure)
        print("FIGURE " + figure.text(), flush=True)
        return figure

    def table(self, title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """A markdown table for RESULTS.md (also printed)."""
        lines = [f"**{title}**", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
        text = "\n".join(lines)
        self.tables.append(text)
        print(text, flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"# {text}", flush=True)

    def markdown(self) -> str:
        mode = "quick" if self.args.quick else "full"
        when = datetime.datetime.fromtimestamp(self.started).strftime("%Y-%m-%d %H:%M")
        lines = [f"## {self.benchmark} ({mode}), {when}", ""]
        lines += [f"- {key}: {value}" for key, value in self.header.items()]
        lines.append(f"- load average at end: {load_average()}; took {time.time() - self.started:.0f} s")
        if self.settings:
            lines.append(f"- settings: {self.settings}")
        if self.figures_in_markdown:
            lines += ["", "| figure | value | target |", "|---|---|---|"]
            for f in self.figures:
                value = f.value if isinstance(f.value, str) else f"{f.value:.4g}"
                target = f.target + ("" if f.met is None else (" (met)" if f.met else " (**not met**)"))
                note = f" ({f.note})" if f.note else ""
                lines.append(f"| {f.name}{note} | {value} {f.unit} | {target} |")
        for table in self.tables:
            lines += ["", table]
        if self.notes:
            lines.append("")
            lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n\n"

    def write(self) -> None:
        """Append this run's section to the results file (unless it is '-')."""
        if self.args.results == "-":
            return
        path = Path(self.args.results)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text("# Benchmark results\n\nAppended by `python -m bench.<name>`; see bench/README.md.\n\n")
        with path.open("a") as handle:
            handle.write(self.markdown())
        print(f"# appended to {path}", flush=True)


def fashion_or_synthetic(quick: bool, n_train: int, n_test: int = 1000):
    """Real Fashion-MNIST when it is on this machine (never downloaded here), else a synthetic 28x28
    dataset of the same shape; quick mode always uses the synthetic one. Returns (dataset, description)."""
    from lab.datasets import DatasetError, load_dataset

    if not quick:
        try:
            return load_dataset("fashion-mnist"), "Fashion-MNIST"
        except DatasetError:
            pass
    return synthetic_dataset(n_train, n_test), "synthetic 28x28 (Fashion-MNIST not found)" if not quick else (
        "synthetic 28x28"
    )


def synthetic_dataset(n_train: int, n_test: int, size: int = 28, seed: int = 0):
    """A 10-class 1 x size x size uint8 dataset whose class is readable from the image (a bright band)."""
    import numpy as np

    from lab.datasets import Dataset

    rng = np.random.default_rng(seed)

    def split(n: int) -> tuple[Any, Any]:
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, size=(n, 1, size, size))
        band = max(1, size // 10)
        for c in range(10):
            images[labels == c, :, c * band : c * band + band, :] = 255
        return images.astype(np.uint8), labels

    train_x, train_y = split(n_train)
    test_x, test_y = split(n_test)
    digits = tuple(str(c) for c in range(10))
    return Dataset.from_arrays("synthetic", train_x, train_y, test_x, test_y, digits, "synthetic")
