"""The report's methods paragraph, written from what the runs and the statistics modules did: data, model,
schedule, seeds, how intervals and verdicts were computed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import models
from lab import datasets
from lab.analysis.seed_stats import VariantSummary
from lab.analysis.statistics import CONFIDENCE
from lab.interpret import statistics as stats
from lab.reports.cam_scores import CamScores
from lab.runs.record import RunRecord


def _number_list(values: Sequence[Any]) -> str:
    return ", ".join(str(value) for value in values)


def methods(records: Sequence[RunRecord], summaries: Sequence[VariantSummary], cams: CamScores | None) -> str:
    """A paragraph a paper can quote: data, model, schedule, seeds, and how the intervals and verdicts were
    computed (plain text; the caller escapes it)."""
    configs = [record.config for record in records if record.config is not None]
    if not configs:
        return "No run of this experiment has a readable configuration."
    first = configs[0]
    info = datasets.info(first.dataset)
    model = next((m.summary for m in models.available() if m.name == first.model), first.model)
    seeds = sorted({config.seed for config in configs})
    subset = (
        f"a fixed random subset of {first.train_limit:,} training images, drawn by each run's seed,"
        if first.train_limit
        else "the whole training split"
    )
    optimizer = (
        "SGD with Nesterov momentum 0.9" if first.optimizer == "sgd" else "AdamW"
    ) + f", weight decay {first.weight_decay:g}"
    variants = "; ".join(
        f"{s.variant} ({s.loss}: " + ", ".join(f"{key}={value}" for key, value in sorted(s.loss_params.items())) + ")"
        for s in summaries
    )
    text = [
        f"Each model was trained on {info.label} ({subset}) and evaluated on the whole test split. "
        f"The network is LossLens's '{first.model}' CNN ({model}) with a {first.feat_dim}-dimensional feature layer, "
        f"on which each loss acts. Training ran {first.epochs} epochs with batches of {first.batch_size} images, "
        f"{optimizer}, and a one-cycle learning-rate schedule (PyTorch's OneCycleLR with its defaults) peaking at "
        f"{first.lr:g}. The variants were {variants}. Each variant was trained once per seed ({_number_list(seeds)}); "
        "a seed fixes the training subset, the initial weights and the batch order, so the runs of one seed share "
        "them across variants."
    ]
    differing = sorted(
        name
        for name in (
            "dataset",
            "model",
            "feat_dim",
            "epochs",
            "batch_size",
            "optimizer",
            "lr",
            "weight_decay",
            "train_limit",
        )
        if len({repr(getattr(config, name)) for config in configs}) > 1
    )
    if differing:
        text.append(f"Not every run shares these settings: {', '.join(differing)} differ (see the runs' settings).")
    level = f"{CONFIDENCE:.0%}"
    text.append(
        f"For each figure we report the mean over the finished seeds with a {level} confidence interval: Student's t "
        "with n - 1 degrees of freedom, computed on the logit scale of the figure's range (accuracy in [0, 1], "
        "angles in [0, 180] degrees; a figure bounded on one side on the log scale) by the delta method and mapped "
        "back, so that an interval stays within the range. Differences to the baseline variant are paired by seed "
        "and get the same interval on the difference's range. Runs that did not finish are not averaged in."
    )
    text.append(
        "Each loss's expected effect against softmax (its lesson) is tested with a paired t-test over the seeds, "
        "with p-values Holm-adjusted over the figures one loss promises to move; a verdict is drawn at the 5% level "
        "of the adjusted p."
    )
    if cams is not None and cams.tables:
        over = (
            "each run's mean over the images is one value per seed; intervals are Student's t over the seeds and each "
            "test is a paired t-test over the seeds (each run against its own baseline maps, and each loss against "
            "softmax seed by seed)"
            if cams.over == "seeds"
            else "intervals are bootstrap percentile intervals over the images (2,000 resamples) and each test a "
            "paired t-test over the images"
        )
        text.append(
            f"{cams.method} maps of the predicted class were computed at the last convolution on the first "
            f"{cams.images} stored test images of each run, normalized per map, and scored by deletion and insertion "
            "AUC, ROAD, confidence drop, the map's mass on the object and the similarity to the maps of the same model "
            f"with its top layers re-initialized (a sanity check); {over}. P-values are adjusted by "
            f"{stats.CORRECTION}, and a "
            "verdict (better, worse, not distinguishable) is drawn at the 5% level; a loss is called better than "
            "softmax only on a metric where its own maps beat a random map."
        )
    return " ".join(text)
