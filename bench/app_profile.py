"""Where the browser journey's seconds go: the server's time and bytes per element, and the browser's time.

    python -m bench.app_profile            # the full journey of bench.browser.browser_journey
    python -m bench.app_profile --quick    # the short one (first page, Train, Feature space warm, switch)

For every step of :func:`bench.browser.browser_journey` (one run, this checkout): the seconds to the page
settled; the server's script runs and their seconds; the messages it sent by element type (count, bytes,
how many the browser already held and got as a reference, the Python seconds spent before them); the lines
of the app that spent the most Python time before a message; the websocket bytes the browser received;
and Chromium's own time over the step (the renderer's task, script, layout and style seconds from the
DevTools protocol's ``Performance.getMetrics``). Prints the tables; nothing is written to RESULTS.md (the
figures of record are ``bench.app_latency``'s).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench import browser

CHROME_METRICS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")


def chrome_time(tab: browser.Tab) -> Iterator[dict]:
    """The renderer's seconds over a step (``Performance.getMetrics`` before and after)."""
    session = getattr(tab, "_cdp", None)
    if session is None:
        session = tab._cdp = tab.context.new_cdp_session(tab.page)
        session.send("Performance.enable")

    def metrics() -> dict[str, float]:
        return {m["name"]: m["value"] for m in session.send("Performance.getMetrics")["metrics"]}

    before = metrics()
    extra: dict = {"wall_start": time.time()}
    yield extra
    after = metrics()
    extra["wall_end"] = time.time()
    extra.update({f"chrome_{name}": after[name] - before[name] for name in CHROME_METRICS})


def summarize(steps: dict[str, dict], probe: Path, top: int) -> None:
    lines = [json.loads(line) for line in probe.read_text().splitlines() if line.strip()]
    print(
        "| step | settled s | script runs | server run s | sent kB | as reference | received kB "
        "| chrome task s | script s | layout s | style s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    by_step = {}
    for name, step in steps.items():
        # a script run can end a little after the page counts as settled: take its messages up to 0.5 s later
        inside = [m for m in lines if step["wall_start"] <= m["t"] <= step["wall_end"] + 0.5]
        by_step[name] = inside
        runs = [m for m in inside if m["kind"] == "script_run"]
        messages = [m for m in inside if m["kind"] != "script_run"]
        print(
            f"| {name} | {step['settled']:.2f} | {len(runs)} | {sum(m['seconds'] for m in runs):.2f} "
            f"| {sum(m['bytes'] for m in messages) / 1000:.0f} | {sum(m['sent_as_reference'] for m in messages)}"
            f"/{len(messages)} | {step['received_kB']:.0f} | {step['chrome_TaskDuration']:.2f} "
            f"| {step['chrome_ScriptDuration']:.2f} | {step['chrome_LayoutDuration']:.2f} "
            f"| {step['chrome_RecalcStyleDuration']:.2f} |"
        )
    for name, inside in by_step.items():
        messages = [m for m in inside if m["kind"] != "script_run"]
        kinds: dict[str, list] = collections.defaultdict(lambda: [0, 0, 0, 0.0])
        for m in messages:
            entry = kinds[m["kind"]]
            entry[0] += 1
            entry[1] += m["bytes"]
            entry[2] += m["sent_as_reference"]
            entry[3] += m["python_s"]
        print(f"\n{name}: elements (count, kB, sent as reference, Python s before them)")
        for kind, (count, size, refs, seconds) in sorted(kinds.items(), key=lambda kv: -kv[1][3]):
            print(f"  {kind:24} {count:4d} {size / 1000:9.1f} kB {refs:4d} ref {seconds:7.2f} s")
        places: dict[str, float] = collections.Counter()
        for m in messages:
            places[m["where"]] += m["python_s"]
        print("  where the Python time went (before the message from that line):")
        for where, seconds in places.most_common(top):
            print(f"    {seconds:7.2f} s  {where}")


def main(argv: list[str] | None = None) -> None:
    parse = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parse.add_argument("--quick", action="store_true", help="the short journey")
    parse.add_argument("--top", type=int, default=8, help="lines of the app per step (default 8)")
    args = parse.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="losslens-profile-") as folder:
        probe = Path(folder) / "probe.jsonl"
        steps: dict[str, dict] = {}
        browser.browser_journey(
            quick=args.quick,
            around=contextlib.contextmanager(lambda tab, name: chrome_time(tab)),
            probe=probe,
            steps=steps,
        )
        summarize(steps, probe, args.top)


if __name__ == "__main__":
    main()
