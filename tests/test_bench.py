"""Every benchmark runs in quick mode and prints its figure lines. A benchmark is not a test: nothing
here checks a timing; this only keeps the benchmarks from rotting. Results go to a temporary file,
never to the committed bench/RESULTS.md."""

from __future__ import annotations

import subprocess

import pytest

from bench import app_latency, classroom, interpret, lockstep, loss_overhead, memory, playground, quality, throughput
from tests.browser import requires_chromium

pytestmark = pytest.mark.bench


@pytest.mark.parametrize(
    "bench_module",
    [
        throughput,
        loss_overhead,
        app_latency,
        quality,
        memory,
        playground,
        interpret,
        lockstep,
        pytest.param(classroom, marks=requires_chromium),  # a real server and browsers
    ],
    ids=lambda module: module.__name__.rsplit(".", 1)[-1],
)
def test_benchmark_runs_in_quick_mode_and_prints_its_figures(bench_module, tmp_path, capsys):
    # (not named "benchmark": pytest-benchmark, where installed, owns that fixture name)
    results = tmp_path / "RESULTS.md"
    report = bench_module.main(["--quick", "--results", str(results)])
    printed = capsys.readouterr().out
    assert report.figures
    for figure in report.figures:
        assert f"FIGURE {figure.text()}" in printed
    written = results.read_text()
    assert written.count(f"## {report.benchmark} (quick)") == 1
    assert "torch:" in written and "cores:" in written and "device:" in written


def test_app_latency_measures_another_checkout_in_its_own_process(tmp_path):
    """``--checkout``: the app sections also measured at another revision (here HEAD) in a temporary git
    worktree, whose figures are named before/...; the worktree is gone afterwards."""
    listed = subprocess.run(["git", "worktree", "list"], cwd=app_latency.ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    results = tmp_path / "RESULTS.md"
    report = app_latency.main(["--quick", "--results", str(results), "--sections", "umap", "--checkout", "HEAD"])
    names = {figure.name for figure in report.figures}
    assert "app_latency/umap/first_300" in names and "app_latency/before/umap/first_300" in names
    assert "| umap/first_300 |" in results.read_text()
    after = subprocess.run(["git", "worktree", "list"], cwd=app_latency.ROOT, capture_output=True, text=True)
    assert "losslens-checkout-" not in after.stdout
