"""How runs and experiments are named on screen: one helper each, for the sidebar and every page."""

from __future__ import annotations

import time

from lab.runstore import RunRecord


def loss_label(record: RunRecord) -> str:
    return record.config.loss if record.config else record.run_id


def experiment_label(experiment: str, records: list[RunRecord]) -> str:
    """``dataset · 2-D · 5 losses 01/12 14:05`` with the time the experiment's first run started (from
    status.json); the shipped example says "example" instead of when it was made."""
    config = next((r.config for r in records if r.config is not None), None)
    if config is None:
        return experiment
    example = experiment.startswith("example") and not any(r.owner for r in records)
    starts = [r.started for r in records if r.started is not None]
    when = time.strftime("%d/%m %H:%M", time.localtime(min(starts))) if starts and not example else ""
    count = f"{len(records)} loss" if len(records) == 1 else f"{len(records)} losses"
    prefix = "example · " if example else ""
    return f"{prefix}{config.dataset} · {config.feat_dim}-D · {count} {when}".strip()
