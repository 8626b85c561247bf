"""Every benchmark runs in quick mode and prints its figure lines. A benchmark is not a test: nothing
here checks a timing; this only keeps the benchmarks from rotting. Results go to a temporary file,
never to the committed bench/RESULTS.md."""

from __future__ import annotations

import pytest

from bench import app_latency, interpret, loss_overhead, memory, playground, quality, throughput


@pytest.mark.parametrize(
    "bench_module",
    [throughput, loss_overhead, app_latency, quality, memory, playground, interpret],
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
