"""One run as read from its folder: its config, status, metrics and the problems found in them, and the states a
run can be in."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from lab.runs import contents
from lab.runs.contents import RunStoreError
from lab.runs.io import (
    problem_text,
    read_json,
    shortened,
)
from lab.settings.config import STORED_FIELDS, RunConfig
from lab.settings.errors import ConfigError

STATUSES = ("running", "finished", "stopped", "diverged", "failed", "interrupted")  # what a writer writes
ELSEWHERE = "elsewhere"  # read as: running according to a writer on another machine
STATES = (*STATUSES, ELSEWHERE)  # what RunRecord.state may be
ACTIVE_STATES = ("running", ELSEWHERE)  # runs that may still be written to: never deleted
FUTURE_SECONDS = 60.0  # a start time further ahead than this is not believed (clock skew is smaller)


@dataclasses.dataclass
class RunRecord:
    """A run as read from disk. ``error`` is set (and the rest may be partial) when files are bad.

    ``status`` holds only type-checked values (see :func:`lab.contents.check_status`); prefer the typed
    accessors below."""

    run_id: str
    run_dir: Path
    config: RunConfig | None
    status: dict[str, Any]
    read_metrics: list[dict[str, Any]] | None = None  # metrics.jsonl's epochs once read; None: not read yet
    error: str | None = None
    fallback_experiment: str = ""  # the experiment an unusable config.json still names: the run stays in it

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """metrics.jsonl's epochs, read on first use: listing runs reads only their config and status. A
        malformed line ends the epochs there and is added to ``error``."""
        if self.read_metrics is None:
            metrics, problem = read_metrics(self.run_dir)
            if problem:
                self.error = f"{self.error}; {problem}" if self.error else problem
            self.read_metrics = metrics
        return self.read_metrics

    @property
    def epochs_done(self) -> int:
        """Epochs trained so far, from the status (older runs whose status does not say: their metrics)."""
        epoch = self.status.get("epoch")
        return epoch if isinstance(epoch, int) else len(self.metrics)

    @property
    def state(self) -> str:
        """One of :data:`STATES`."""
        state = self.status.get("status")
        return state if state in STATES else "failed"

    @property
    def experiment(self) -> str:
        return self.config.experiment if self.config else self.fallback_experiment

    @property
    def owner(self) -> str | None:
        """The app session that started the run, "" for a shared one, None when unknown (no status.json
        or an unreadable one): an unknown owner matches nobody and is never shared."""
        owner = self.status.get("owner")
        return owner if isinstance(owner, str) else None

    @property
    def message(self) -> str:
        message = self.status.get("message", "")
        return message if isinstance(message, str) else ""

    @property
    def started(self) -> float | None:
        """When the run started training (seconds since the epoch), or None if that is not readable or is
        in the future (a planted future time must not make a run the newest)."""
        started = self.status.get("started")
        if not isinstance(started, float) or started > time.time() + FUTURE_SECONDS:
            return None
        return started

    @property
    def updated(self) -> float:
        """When the status last changed (0.0 when not readable): with ``run_dir``, a cache key."""
        updated = self.status.get("updated")
        return updated if isinstance(updated, float) else 0.0

    @property
    def test_acc(self) -> float | None:
        return self._number("test_acc")

    @property
    def train_seconds(self) -> float | None:
        return self._number("train_seconds")

    @property
    def images_per_second(self) -> float | None:
        return self._number("images_per_second")

    def _number(self, key: str) -> float | None:
        value = self.status.get(key)
        return value if isinstance(value, float) else None

    def summary(self) -> dict[str, Any]:
        """The flat record the CLI prints, one JSON object per run."""
        config = self.config
        return {
            "run_id": self.run_id,
            "run_dir": str(self.run_dir),
            "experiment": config.experiment if config else None,
            "loss": config.loss if config else None,
            "dataset": config.dataset if config else None,
            "model": config.model if config else None,
            "feat_dim": config.feat_dim if config else None,
            "epochs": config.epochs if config else None,
            "epochs_done": self.epochs_done,
            "status": self.state,
            "message": self.error or self.message,
            "test_acc": self.test_acc,
            "train_seconds": self.train_seconds,
            "images_per_second": self.images_per_second,
        }


def config_of(raw: Any) -> tuple[RunConfig | None, str | None, str]:
    """config.json's config, or None with its problem and the experiment the file still names."""
    try:
        if raw is None:
            raise RunStoreError(f"{contents.CONFIG} is missing")
        return RunConfig.from_dict(raw, STORED_FIELDS), None, ""
    except Exception as err:  # ConfigError, TypeError from a mistyped field, ...
        return None, problem_text(contents.CONFIG, err), _named_experiment(raw)


def status_of(raw: Any) -> tuple[dict[str, Any], list[str]]:
    """status.json's checked fields and problems; a status that cannot be used raises RunStoreError."""
    if raw is None:
        raise RunStoreError(f"{contents.STATUS} is missing, so the run's owner is unknown")
    checked, problems = contents.check_status(raw)
    if checked.get("status") not in STATUSES:
        raise RunStoreError(f"{contents.STATUS} is unreadable (status must be one of {', '.join(STATUSES)})")
    return checked, [shortened(problem) for problem in problems]


def read_metrics(run_dir: Path) -> tuple[list[dict[str, Any]], str | None]:
    """metrics.jsonl's epochs up to the first malformed line, and the problem that ended them (or None)."""
    try:
        metrics, problem = contents.check_metrics(read_json(run_dir, contents.METRICS) or [])
    except Exception as err:
        return [], problem_text(contents.METRICS, err)
    return metrics, shortened(f"{contents.METRICS} is unreadable ({problem})") if problem else None


def _named_experiment(raw_config: Any) -> str:
    """The experiment an unusable config's JSON object names, if it is a plausible name."""
    name = raw_config.get("experiment") if isinstance(raw_config, dict) else None
    return name if isinstance(name, str) and 0 < len(name) <= 200 and name.isprintable() else ""


def require_config(record: RunRecord) -> RunConfig:
    if record.config is None:
        raise ConfigError(f"run {record.run_id}: {record.error}")
    return record.config


def start_time(record: RunRecord) -> float:
    return record.started if record.started is not None else float("inf")


def newest_first(group: tuple[str, list[RunRecord]]) -> tuple[float, str]:
    experiment, records = group
    starts = [r.started for r in records if r.started is not None]
    return (-max(starts) if starts else float("inf"), experiment)
