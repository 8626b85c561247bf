"""The interpretability section of the Grad-CAM page: each metric next to its baselines with 95% CIs, and
the paired difference of every loss to softmax ("does this loss make Grad-CAM more interpretable?").

Computed only when asked for (a toggle), with a progress bar fed by the metrics' own progress callback,
and kept per run and settings (:func:`ui.cams.metrics`), so the Compare page can show what was computed.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from lab import interpret, summary
from lab.interpret import MetricResult
from lab.runstore import RunRecord
from ui import cams, layout, loaders, seeds, titles

NOT_DISTINGUISHABLE = "not distinguishable from a random map"
PASSES_SANITY = "passes the sanity check"
PARTLY_FAILS_SANITY = "partly fails the sanity check"
BASELINE_COLUMNS = {"random": "random map", "gaussian": "centred Gaussian", "blurred": "blurred image"}
REFERENCE_LOSS = "softmax"
SCORING_TIME = (
    "Scoring takes about four seconds per run for 200 28x28 images on two quiet CPU cores, more when other work "
    "shares them (`bench/interpret.py`); the results are kept for this server."
)


def verdict(result: MetricResult) -> str:
    """What the metric says about the maps, against the random-map baseline."""
    if result.value is None:
        return "undefined on these images"
    if result.name == "randomization_similarity":
        # here the baseline is "changed completely", so matching it is the good outcome
        if result.distinguishable and result.value > (result.baseline or 0.0):
            return PARTLY_FAILS_SANITY
        return PASSES_SANITY
    if not result.distinguishable:
        return NOT_DISTINGUISHABLE
    spec = interpret.METRICS[result.name]
    better = (result.value > (result.baseline or 0.0)) == spec.higher_is_better
    return "better than a random map" if better else "worse than a random map"


def _number(value: float | None, percent: bool, signed: bool = False) -> str:
    if value is None:
        return "–"
    sign = "+" if signed else ""  # a difference reads as one only with its sign
    return f"{value:{sign}.1%}" if percent else f"{value:{sign}.3f}"


ROW_HEIGHT = 35  # pixels, Streamlit's default dataframe row
# Fixed widths for the short columns leave the verdict the rest of a 1440-pixel screen's main column, so
# "not distinguishable from a random map" is read whole, not cut off.
METRIC_COLUMNS = {
    "loss": st.column_config.TextColumn(width=150),
    "metric": st.column_config.TextColumn(width=160),
    "value": st.column_config.TextColumn(width=60),
    "95% CI": st.column_config.TextColumn(width=115, help="bootstrap 95% confidence interval over the images"),
    "random map": st.column_config.TextColumn(width=85, help="the metric for seeded random maps"),
    "centred Gaussian": st.column_config.TextColumn(width=110, help="the metric for one centred Gaussian map"),
    "blurred image": st.column_config.TextColumn(
        width=95, help="deletion and insertion: the prediction on the blurred image, where the curves end or start"
    ),
    "verdict": st.column_config.TextColumn(
        help="Against the random map: whether the CI of the paired difference (maps minus random map, image by "
        "image) excludes 0. The sanity check passes when the maps of the model with its top layers "
        "re-initialized are no more like its maps than random maps are; it partly fails when they keep part "
        "of the pattern (the maps then depend less on what the model learned)."
    ),
}


def table_height(rows: int) -> int:
    """Pixels that show every row and the header, without an inner scroll bar."""
    return ROW_HEIGHT * (rows + 1) + 3


def metric_rows(names: list[str], results: list[dict[str, MetricResult | None]]) -> list[dict[str, str]]:
    """One table row per loss and metric: value with its 95% CI, the baselines, the verdict."""
    rows = []
    for name, per_metric in zip(names, results, strict=True):
        for metric in interpret.REPORTED:
            result = per_metric.get(metric)
            spec = interpret.METRICS[metric]
            if result is None:
                rows.append({"loss": name, "metric": spec.label, "verdict": "not computed for this dataset"})
                continue
            row = {
                "loss": name,
                "metric": spec.label + (" ↑" if spec.higher_is_better else " ↓"),
                "value": _number(result.value, spec.percent),
                "95% CI": f"{_number(result.ci_low, spec.percent)} to {_number(result.ci_high, spec.percent)}",
            }
            for key, column in BASELINE_COLUMNS.items():
                row[column] = _number(result.baselines.get(key), spec.percent) if key in result.baselines else ""
            row["verdict"] = verdict(result)
            rows.append(row)
    return rows


def comparison_rows(
    name: str, results: dict[str, MetricResult | None], reference: dict[str, MetricResult | None]
) -> tuple[list[dict[str, str]], list[str]]:
    """The paired differences ``name`` minus softmax per metric, and a plain sentence for each."""
    rows, sentences = [], []
    for metric in interpret.REPORTED:
        a, b = results.get(metric), reference.get(metric)
        if a is None or b is None:
            continue
        spec = interpret.METRICS[metric]
        comparison = interpret.compare(a, b)
        if comparison.better is None:
            outcome = "no significant difference"
        else:
            outcome = "better" if comparison.better else "worse"
        if metric != "randomization_similarity" and not (a.distinguishable or b.distinguishable):
            outcome += f" (both {NOT_DISTINGUISHABLE})"
        rows.append(
            {
                "metric": spec.label,
                "difference": _number(comparison.difference, spec.percent, signed=True),
                "95% CI": (
                    f"{_number(comparison.ci_low, spec.percent, signed=True)} to "
                    f"{_number(comparison.ci_high, spec.percent, signed=True)}"
                ),
                "outcome": outcome,
            }
        )
        sentences.append(interpret.sentence(comparison, name, REFERENCE_LOSS))
    return rows, sentences


def _same_images(loaded: list[tuple[RunRecord, loaders.RunArrays]], n_images: int) -> bool:
    first = loaded[0][1].snapshot_indices[:n_images]
    return all(np.array_equal(arrays.snapshot_indices[:n_images], first) for _, arrays in loaded)


def section(
    loaded: list[tuple[RunRecord, loaders.RunArrays]],
    method: str,
    layer: str,
    every_seed: list[tuple[RunRecord, loaders.RunArrays]] | None = None,
) -> None:
    """Draw the interpretability section for the runs in ``loaded`` (one training seed) and the page's
    method and layer; with ``every_seed`` (the experiment's runs of all its seeds), also the figures over
    the seeds when there are several."""
    usable = [(record, arrays) for record, arrays in loaded if arrays.snapshot_images is not None]
    if not usable:
        st.info("These runs store no test images (they were trained before runs kept them): retrain to score maps.")
        return
    stored = min(len(arrays.snapshot_images) for _, arrays in usable)
    n_images = int(
        st.number_input(
            "Images to score",
            10,
            stored,
            min(cams.INTERPRET_IMAGES, stored),
            step=10,
            key="cam_metric_images",
            help=f"The first images of the {stored} test images each run stores; the same images for every loss.",
        )
    )
    st.caption(
        f"{method} maps of the predicted class at the {cams.LAYERS[layer]}, each on its own scale, on {n_images} "
        "stored test images. Each value is a mean over the images with a bootstrap 95% CI, next to the same "
        "metric for maps that know nothing about the model: a random map, a centred Gaussian and, for deletion "
        "and insertion, the blurred image. A metric whose value cannot be told apart from a random map's "
        f"(the CI of the paired difference includes 0) is marked *{NOT_DISTINGUISHABLE}*: it says nothing about "
        "the maps. The sanity check (Adebayo et al., 2018) re-initializes the model's top layers; the maps *partly "
        "fail* it when they stay more like the trained model's maps than random maps do, since then they do not "
        "depend on what those layers learned. ↑ higher is better, ↓ lower is better."
    )
    _one_seed(usable, method, layer, n_images)
    if every_seed is not None and len(seeds.seeds_of([record for record, _ in every_seed])) > 1:
        _over_seeds(every_seed, method, layer, n_images)


def _one_seed(usable: list[tuple[RunRecord, loaders.RunArrays]], method: str, layer: str, n_images: int) -> None:
    """The metric table of the runs shown and each loss's paired difference to softmax over the images."""
    cached = [cams.cached_metrics(record, method, layer, n_images) for record, _ in usable]
    if any(result is None for result in cached):
        if not st.toggle("Score the maps", key="cam_score"):
            st.caption(SCORING_TIME)
            return
        cached = _score(usable, method, layer, n_images)
    names = [titles.loss_label(record) for record, _ in usable]
    table = metric_rows(names, cached)
    st.dataframe(
        table, hide_index=True, column_config=METRIC_COLUMNS, height=table_height(len(table)), key="cam_metric_table"
    )

    st.subheader("Does this loss make Grad-CAM more interpretable than softmax?")
    reference = [i for i, (record, _) in enumerate(usable) if record.config and record.config.loss == REFERENCE_LOSS]
    if not reference:
        st.info("This experiment has no softmax run to compare with: train one in the same experiment.")
        return
    if not _same_images(usable, n_images):
        st.warning("These runs stored different test images, so their maps cannot be compared image by image.")
        return
    ref = cached[reference[0]]
    for i, (name, results) in enumerate(zip(names, cached, strict=True)):
        if i == reference[0]:
            continue
        rows, sentences = comparison_rows(name, results, ref)
        better = sum(row["outcome"].startswith("better") for row in rows)
        worse = sum(row["outcome"].startswith("worse") for row in rows)
        if better == worse == 0:
            headline = f"{name}: no significant difference from softmax on any metric on these {n_images} images."
        else:
            headline = (
                f"{name}: significantly better than softmax on {better} and worse on {worse} of {len(rows)} "
                f"metrics on these {n_images} images; no significant difference on the rest."
            )
        with st.expander(headline, expanded=False):
            st.dataframe(rows, hide_index=True, height=table_height(len(rows)), key=f"cam_compare_{i}")
            for text in sentences:
                st.markdown(f"- {text}")
    st.caption(
        f"Differences are each loss minus softmax, image by image, over the same {n_images} images, with bootstrap "
        "95% CIs. They say how sure these numbers are for these trained models and images, not across training "
        "seeds: train several seeds to see how much the difference varies from run to run."
    )


def _score(
    runs: list[tuple[RunRecord, loaders.RunArrays]], method: str, layer: str, n_images: int
) -> list[dict[str, MetricResult | None]]:
    """Every run's metrics (kept per run and settings), with one progress bar over all of them."""

    def name(run: tuple[RunRecord, loaders.RunArrays]) -> str:
        return titles.loss_label(run[0]) + (f", seed {run[0].config.seed}" if run[0].config else "")

    return layout.each_with_progress(
        runs, name, lambda run, report: cams.metrics(run[0], run[1], method, layer, n_images, report)
    )


def seed_rows(values: dict[str, dict[str, dict[int, float]]], reference: str | None) -> list[dict[str, str]]:
    """One row per metric and variant from ``values[metric][variant][seed]`` (each run's mean over the
    images): the mean over seeds with its t interval and, but for ``reference``, the paired difference to
    it seed by seed and what that says."""
    rows = []
    for metric, by_variant in values.items():
        spec = interpret.METRICS[metric]
        for figure in summary.over_seeds(by_variant, reference if reference in by_variant else None):
            stats, difference = figure.stats, figure.difference
            row = {
                "loss": figure.variant,
                "metric": spec.label + (" ↑" if spec.higher_is_better else " ↓"),
                "seeds": str(stats.n),
                "mean": _number(stats.mean, spec.percent),
                "95% CI": _interval(stats, spec.percent),
            }
            if figure.variant == reference:
                row |= {"minus softmax": "", "95% CI of the difference": "", "outcome": "the reference"}
            else:
                row["minus softmax"] = _number(difference.mean, spec.percent, signed=True) if difference else "–"
                row["95% CI of the difference"] = _interval(difference, spec.percent, signed=True)
                row["outcome"] = _seed_outcome(difference, spec.higher_is_better)
            rows.append(row)
    return rows


def _interval(interval: summary.Interval | None, percent: bool, signed: bool = False) -> str:
    if interval is None or interval.ci_low is None:
        return "one seed: no interval"
    return f"{_number(interval.ci_low, percent, signed)} to {_number(interval.ci_high, percent, signed)}"


def _seed_outcome(difference: summary.Interval | None, higher_is_better: bool) -> str:
    if difference is None or difference.ci_low is None:
        return "needs two paired seeds"
    if difference.ci_low <= 0 <= difference.ci_high:
        return "no significant difference"
    return "better" if (difference.mean > 0) == higher_is_better else "worse"


def _over_seeds(every_seed: list[tuple[RunRecord, loaders.RunArrays]], method: str, layer: str, n_images: int) -> None:
    """The metrics over training seeds: each run scored on the same images, each variant's mean over its
    seeds with a t interval, and the paired difference to softmax seed by seed."""
    usable = [(r, a) for r, a in every_seed if a.snapshot_images is not None and r.config is not None]
    st.subheader("Over training seeds")
    st.caption(
        f"Each run's value is its mean over the same {n_images} images; the interval is Student's t over the "
        "training seeds, and the difference to softmax pairs the runs seed by seed (same data subset, initial "
        "weights and batch order). This says whether a difference survives retraining, which the CIs over "
        "images above cannot."
    )
    cached = [cams.cached_metrics(record, method, layer, n_images) for record, _ in usable]
    if any(result is None for result in cached):
        if not st.toggle(f"Score every seed ({len(usable)} runs)", key="cam_score_seeds"):
            st.caption(SCORING_TIME)
            return
        _score(usable, method, layer, n_images)
        st.rerun()  # the shown seed's table above is drawn from the same results
    values: dict[str, dict[str, dict[int, float]]] = {}
    for (record, _), results in zip(usable, cached, strict=True):
        for metric in interpret.REPORTED:
            result = results.get(metric)
            if result is not None and result.value is not None:
                by_seed = values.setdefault(metric, {}).setdefault(titles.loss_label(record), {})
                by_seed[record.config.seed] = result.value
    references = {titles.loss_label(r) for r, _ in usable if r.config.loss == REFERENCE_LOSS}
    reference = min(references) if references else None
    rows = seed_rows(values, reference)
    st.dataframe(rows, hide_index=True, height=table_height(len(rows)), key="cam_seed_table")
