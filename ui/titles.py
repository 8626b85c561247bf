"""How runs and experiments are named on screen: one helper each, for the sidebar and every page."""

from __future__ import annotations

import time

from lab.runs.record import RunRecord
from lab.settings.experiment import variant_label
from lab.shown_text import count_text
from ui.session import started_at


def loss_label(record: RunRecord) -> str:
    """The run's variant as its paper names the loss, with the settings that set it apart ("L-Softmax m=4"),
    as its run file holds it: text, which each place that shows it escapes (:func:`ui.text.plain` for Markdown,
    :func:`lab.shown_text.plotly_text` for a figure)."""
    return record.run_id if record.config is None else variant_label(record.config)


def experiment_label(experiment: str, records: list[RunRecord]) -> str:
    """``dataset · 2-D · 5 losses 01/12 14:05`` (``4 variants × 3 seeds`` when a loss appears with several
    settings and the runs have several seeds) with the time the experiment's first run started (from
    status.json, when believable); the shipped example says "example" instead of when it was made."""
    config = next((r.config for r in records if r.config is not None), None)
    if config is None:
        return experiment
    example = experiment.startswith("example") and not any(r.owner for r in records)
    starts = [s for s in map(started_at, records) if s is not None]
    when = time.strftime("%d/%m %H:%M", time.localtime(min(starts))) if starts and not example else ""
    configs = [r.config for r in records if r.config is not None]
    variants = {variant_label(c) for c in configs}
    noun = "loss" if len(variants) == len({c.loss for c in configs}) else "variant"
    count = _count(len(variants), noun)
    seeds = {c.seed for c in configs}
    if len(seeds) > 1:
        count += f" × {_count(len(seeds), 'seed')}"
    prefix = "example · " if example else ""
    return f"{prefix}{config.dataset} · {config.feat_dim}-D · {count} {when}".strip()


def _count(n: int, noun: str) -> str:
    return count_text(n, noun, "losses" if noun == "loss" else "")
