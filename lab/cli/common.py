"""What every command shares: one-line usage errors, JSON lines on stdout with no NaN, and a progress bar on
stderr."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any, TextIO


class UsageError(Exception):
    """A command-line mistake; printed as one line."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print usage and exit; we want one line
        raise UsageError(message)


def print_json(record: dict[str, Any]) -> None:
    """One JSON line on stdout. JSON has no NaN or infinity: such a number is printed as null, and a
    ``warning:`` line on stderr names each field it replaced."""
    replaced: list[str] = []
    line = json.dumps(_finite(record, "", replaced), allow_nan=False)
    for field in replaced:
        sys.stderr.write(f"warning: {field} is not a finite number; printed as null\n")
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _finite(value: Any, where: str, replaced: list[str]) -> Any:
    """``value`` with every NaN or infinite float replaced by None, their places noted in ``replaced``."""
    if isinstance(value, float) and not math.isfinite(value):
        replaced.append(where or "the value")
        return None
    if isinstance(value, dict):
        return {key: _finite(item, f"{where}.{key}" if where else str(key), replaced) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item, f"{where}[{i}]", replaced) for i, item in enumerate(value)]
    return value


class ProgressBar:
    """One progress line on stderr, redrawn at most ten times a second; when the stream is not a terminal (a
    log file), only the lines a caller marks as milestones are written, one per line."""

    WIDTH = 30
    REDRAW_SECONDS = 0.1

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = self.stream.isatty()
        self.last_draw = 0.0

    def draw(self, fraction: float, label: str, detail: str, milestone: bool = False, last: bool = False) -> None:
        """Show ``label |####....|  40% detail`` filled to ``fraction``; ``last`` ends the line on a terminal."""
        now = time.monotonic()
        if not milestone and (not self.interactive or now - self.last_draw < self.REDRAW_SECONDS):
            return
        self.last_draw = now
        filled = round(self.WIDTH * min(max(fraction, 0.0), 1.0))
        line = f"{label} |{'#' * filled}{'.' * (self.WIDTH - filled)}| {fraction:4.0%} {detail}"
        if self.interactive:
            self.stream.write(f"\r{line}\033[K{chr(10) if last else ''}")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
