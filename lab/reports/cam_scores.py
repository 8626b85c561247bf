"""Each run's Grad-CAM maps scored for the report: the interpretability metrics of its stored test images, and
their verdicts over seeds."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from lab import datasets
from lab.interpret import statistics as stats
from lab.interpret.statistics import MetricResult
from lab.reports.tables import Table, interpret_table, versus_reference_table
from lab.runs.record import RunRecord
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.settings.experiment import variant_label

ProgressText = Callable[[str], None]  # told what the report is doing now, in words


@dataclasses.dataclass(frozen=True)
class CamScores:
    """The Grad-CAM metrics of an experiment: the tables and how they were computed."""

    tables: list[Table]
    over: str
    images: int
    method: str
    failures: list[str]


def score_maps(
    store: RunStore,
    records: Sequence[RunRecord],
    images: int,
    method: str = "GradCAM",
    progress: ProgressText | None = None,
) -> CamScores:
    """Each finished run's Grad-CAM metrics on its first ``images`` stored test images; with several seeds,
    each variant over its seeds (and against softmax seed by seed), else each run over the images."""
    from lab.interpret import gradcam  # pytorch-grad-cam: only when maps are scored
    from lab.runs.restore import load_trained

    scored: list[tuple[RunConfig, dict[str, MetricResult | None]]] = []
    failures = []
    used = images
    for record in records:
        if record.state != "finished" or record.config is None:
            continue
        if progress:
            progress(f"scoring the maps of {record.run_id}")
        try:
            stored = store.load_features(record.run_id).snapshot_images
            if stored is None:
                raise ValueError("it stores no test images (trained before runs kept them)")
            model, head = load_trained(store, record)
            info = datasets.info(record.config.dataset)
            used = min(used, len(stored))
            metrics = gradcam.interpretability(
                model,
                head,
                stored[:images].numpy(),
                info.train_statistics,
                method=method,
                foreground_known=info.foreground_known,
            )
        except (ValueError, RuntimeError) as err:
            failures.append(f"{record.run_id}: {err}")
            continue
        scored.append((record.config, metrics))
    several = len({config.seed for config, _ in scored}) > 1
    if several:
        by_variant: dict[str, dict[int, dict[str, MetricResult | None]]] = {}
        kinds: dict[str, str] = {}
        for config, metrics in scored:
            by_variant.setdefault(variant_label(config), {})[config.seed] = metrics
            kinds.setdefault(variant_label(config), config.loss)
        names = list(by_variant)
        results = [stats.over_seeds(by_variant[name]) for name in names]
        reference = next((i for i, name in enumerate(names) if kinds[name] == stats.REFERENCE_LOSS), None)
        over = "seeds"
    else:
        names = [variant_label(config) for config, _ in scored]
        results = [metrics for _, metrics in scored]
        reference = next((i for i, (c, _) in enumerate(scored) if c.loss == stats.REFERENCE_LOSS), None)
        over = "images"
    tables = [interpret_table(names, results, over, method)] if names else []
    if reference is not None and len(names) > 1:
        tables.append(versus_reference_table(names, results, reference, over))
    return CamScores(tables, over, used, method, failures)
