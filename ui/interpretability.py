"""The interpretability section of the Grad-CAM page: each metric next to its baselines with 95% CIs, and
the paired difference of every loss to softmax ("does this loss make Grad-CAM more interpretable?").

Computed only when asked for (a toggle), with a progress bar fed by the metrics' own progress callback,
and kept per run and settings (:func:`ui.cams.metrics`), so the Compare page can show what was computed.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from lab import interpret
from lab.interpret import MetricResult
from lab.runstore import RunRecord
from ui import cams, loaders, titles

NOT_DISTINGUISHABLE = "not distinguishable from a random map"
BASELINE_COLUMNS = {"random": "random map", "gaussian": "centred Gaussian", "blurred": "blurred image"}
REFERENCE_LOSS = "softmax"


def verdict(result: MetricResult) -> str:
    """What the metric says about the maps, against the random-map baseline."""
    if result.value is None:
        return "undefined on these images"
    if result.name == "randomization_similarity":
        # here the baseline is "changed completely", so matching it is the good outcome
        if result.distinguishable and result.value > (result.baseline or 0.0):
            return "maps keep part of their pattern when the top layers are re-initialized"
        return "maps change completely when the top layers are re-initialized (passes the sanity check)"
    if not result.distinguishable:
        return NOT_DISTINGUISHABLE
    spec = interpret.METRICS[result.name]
    better = (result.value > (result.baseline or 0.0)) == spec.higher_is_better
    return "better than a random map" if better else "worse than a random map"


def _number(value: float | None, percent: bool) -> str:
    if value is None:
        return "–"
    return f"{value:.1%}" if percent else f"{value:.3f}"


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
                "difference": _number(comparison.difference, spec.percent),
                "95% CI": f"{_number(comparison.ci_low, spec.percent)} to {_number(comparison.ci_high, spec.percent)}",
                "outcome": outcome,
            }
        )
        sentences.append(interpret.sentence(comparison, name, REFERENCE_LOSS))
    return rows, sentences


def _same_images(loaded: list[tuple[RunRecord, loaders.RunArrays]], n_images: int) -> bool:
    first = loaded[0][1].snapshot_indices[:n_images]
    return all(np.array_equal(arrays.snapshot_indices[:n_images], first) for _, arrays in loaded)


def section(loaded: list[tuple[RunRecord, loaders.RunArrays]], method: str, layer: str) -> None:
    """Draw the interpretability section for the runs in ``loaded`` and the page's method and layer."""
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
        "the maps. ↑ higher is better, ↓ lower is better."
    )
    cached = [cams.cached_metrics(record, method, layer, n_images) for record, _ in usable]
    if any(result is None for result in cached):
        if not st.toggle("Score the maps", key="cam_score"):
            st.caption("Scoring takes a few seconds per run on a CPU; the results are kept for this server.")
            return
        bar = st.progress(0.0, text="Scoring the maps...")
        cached = []
        for i, (record, arrays) in enumerate(usable):
            name = titles.loss_label(record)

            def report(fraction: float, text: str, i: int = i, name: str = name) -> None:
                bar.progress(min(1.0, (i + fraction) / len(usable)), text=f"{name}: {text}")

            cached.append(cams.metrics(record, arrays, method, layer, n_images, report))
        bar.empty()
    names = [titles.loss_label(record) for record, _ in usable]
    st.dataframe(metric_rows(names, cached), hide_index=True, key="cam_metric_table")

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
            st.dataframe(rows, hide_index=True, key=f"cam_compare_{i}")
            for text in sentences:
                st.markdown(f"- {text}")
    st.caption(
        f"Differences are each loss minus softmax, image by image, over the same {n_images} images, with bootstrap "
        "95% CIs. They say how sure these numbers are for these trained models and images, not across training "
        "seeds: train several seeds to see how much the difference varies from run to run."
    )
