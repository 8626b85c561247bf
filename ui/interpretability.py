"""The interpretability section of the Grad-CAM page: each metric next to its baselines with the verdict
against each, and every loss against softmax ("does this loss make Grad-CAM more interpretable?").

With several training seeds the verdict comes from the seeds and is shown first; one seed's figures over
its images follow, labelled as one seed. The statistics are :mod:`lab.interpret.statistics`'s; this module
only lays them out. Computed only when asked for (a toggle), with a progress bar fed by the metrics' own
progress callback, and kept per run and settings (:func:`ui.cams.metrics`), so the Compare page can show
what was computed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import streamlit as st

from lab.interpret import scoring, verdicts
from lab.interpret import statistics as stats
from lab.interpret.statistics import MetricResult, SeedResult
from lab.reports.tables import interpret_table, versus_reference_table
from lab.runs.record import RunRecord
from ui import cams, downloads, layout, loaders, seeds, titles
from ui.text import plain

Result = MetricResult | SeedResult
NOT_DISTINGUISHABLE = "not distinguishable from a random map"
PASSES_SANITY = "passes the sanity check"
PARTLY_FAILS_SANITY = "partly fails the sanity check"
UNDEFINED = "undefined on these images"
BASELINE_COLUMNS = {"random": "random map", "gaussian": "centred Gaussian", "blurred": "blurred image"}
REFERENCE_LOSS = stats.REFERENCE_LOSS
SCORING_TIME = (
    "Scoring takes about four seconds per run for 200 28x28 images on two quiet CPU cores, more when other work "
    "shares them (`bench/interpret.py`); the results are kept for this server."
)
METHOD = (
    "Each metric is tested against each baseline map with a paired t-test ({test}); the p-values of one "
    "comparison (against the random map, against the Gaussian, against softmax) are adjusted by Holm-Bonferroni "
    "over the metrics, and a verdict (better, worse, not distinguishable) is taken at 5% of the adjusted p. "
    "Worse than a random map is a finding: the maps do less than noise would on that metric. A loss is called "
    "better than softmax only on a metric where its own maps are better than a random map."
)


def verdict(result: Result) -> str:
    """The maps against the random map in words: better, worse or not distinguishable, or for the
    randomization check whether it passes."""
    if result.value is None:
        return UNDEFINED
    return verdicts.against_random(result)


def _number(value: float | None, percent: bool, signed: bool = False) -> str:
    if value is None:
        return "–"
    sign = "+" if signed else ""  # a difference reads as one only with its sign
    return f"{value:{sign}.1%}" if percent else f"{value:{sign}.3f}"


def _against(result: Result, key: str) -> str:
    """A baseline's cell: its value and which way the maps differ from it."""
    if key not in result.baselines:
        return ""
    value = _number(result.baselines[key], scoring.METRICS[result.name].percent)
    test = result.tests.get(key)
    if test is None or test.verdict is None:
        return value
    return f"{value} · {'maps ' + test.verdict if test.verdict != stats.NOT_DISTINGUISHABLE else test.verdict}"


def reading_guide(over: str) -> str:
    """What the metric table's columns mean, naming the interval and the test that were used."""
    interval = "Student's t interval over the training seeds" if over == "seeds" else "bootstrap CI over the images"
    test = stats.SEED_TEST if over == "seeds" else stats.IMAGE_TEST
    return (
        f"**95% CI**: {interval}. **random map**, **centred Gaussian**, **blurred image**: the metric for that "
        "baseline map (the blurred image: the prediction where the deletion curve ends and the insertion curve "
        "starts) and whether these maps are better or worse than it. **verdict**: the maps against the random "
        f"map; **adjusted p**: its p-value, from a {test}, Holm-adjusted over the metrics."
    )


def p_cell(p: float | None) -> str:
    """An adjusted p-value in a table cell: ``0.034``, ``< 0.001``, ``–`` (untested)."""
    if p is None:
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def metric_tables(names: list[str], results: list[Mapping[str, Result | None]]) -> None:
    """:func:`metric_rows` as one table per loss under its name (and its number of seeds, over seeds)."""
    rows = metric_rows(names, results)
    for name in names:
        own = [row for row in rows if row["loss"] == name]
        seeds = next((row["seeds"] for row in own if "seeds" in row), None)
        st.markdown(f"**{plain(name)}**" + (f" · {seeds} seeds" if seeds else ""))
        show_table([{k: v for k, v in row.items() if k not in ("loss", "seeds")} for row in own])


def show_table(rows: list[dict[str, str]]) -> None:
    """A static table whose cells wrap, so no column is ever cut off, with every cell shown literally."""
    columns = list(dict.fromkeys(column for row in rows for column in row))
    st.table([{column: plain(row.get(column, "")) for column in columns} for row in rows], hide_index=True)


def metric_rows(names: list[str], results: list[Mapping[str, Result | None]]) -> list[dict[str, str]]:
    """One table row per loss and metric: value with its 95% CI, the baselines with the maps' direction
    against each, the verdict against the random map and its adjusted p (seeds too, over seeds)."""
    rows = []
    for name, per_metric in zip(names, results, strict=True):
        for metric in scoring.REPORTED:
            result = per_metric.get(metric)
            spec = scoring.METRICS[metric]
            if result is None:
                rows.append({"loss": name, "metric": spec.label, "verdict": "not computed for this dataset"})
                continue
            row = {"loss": name, "metric": spec.label + (" ↑" if spec.higher_is_better else " ↓")}
            if isinstance(result, SeedResult):
                row["seeds"] = str(result.stats.n)
                low, high = result.stats.ci_low, result.stats.ci_high
            else:
                low, high = result.ci_low, result.ci_high
            row["value"] = _number(result.value, spec.percent)
            row["95% CI"] = (
                f"{_number(low, spec.percent)} to {_number(high, spec.percent)}" if low is not None else "no interval"
            )
            for key, column in BASELINE_COLUMNS.items():
                row[column] = _number(result.baseline, spec.percent) if key == stats.RANDOM else _against(result, key)
            row["verdict"] = verdict(result)
            row["adjusted p"] = p_cell(result.p_adjusted)
            rows.append(row)
    return rows


def comparison_rows(
    name: str, results: Mapping[str, Result | None], reference: Mapping[str, Result | None]
) -> tuple[list[dict[str, str]], list[str]]:
    """``name`` minus softmax on each metric, paired image by image (:class:`MetricResult`) or seed by seed
    (:class:`SeedResult`), Holm-adjusted over the metrics, with the outcome and a plain sentence each."""
    rows, sentences = [], []
    for metric, comparison in stats.compare_all(results, reference).items():
        spec = scoring.METRICS[metric]
        own = results[metric]
        interval = "–"
        if comparison.ci_low is not None:
            interval = (
                f"{_number(comparison.ci_low, spec.percent, signed=True)} to "
                f"{_number(comparison.ci_high, spec.percent, signed=True)}"
            )
        rows.append(
            {
                "metric": spec.label + (" ↑" if spec.higher_is_better else " ↓"),
                "minus softmax": _number(comparison.difference, spec.percent, signed=True),
                "95% CI": interval,
                "adjusted p": p_cell(comparison.p_adjusted),
                "outcome": verdicts.outcome(comparison, own) if comparison.p_adjusted is not None else "not tested",
            }
        )
        sentences.append(verdicts.sentence(comparison, name, REFERENCE_LOSS, own))
    return rows, sentences


def headline(name: str, rows: list[dict[str, str]], where: str) -> str:
    """The answer for one loss against softmax, counted from ``rows`` (:func:`comparison_rows`)."""
    better = sum(row["outcome"] == stats.BETTER for row in rows)
    worse = sum(row["outcome"] == stats.WORSE for row in rows)
    untested = sum(row["outcome"] == "not tested" for row in rows)
    qualified = len(rows) - better - worse - untested - sum(row["outcome"] == stats.NO_DIFFERENCE for row in rows)
    if untested == len(rows):
        return f"{name}: too few paired runs to compare with softmax {where}."
    if better == worse == qualified == 0:
        return f"{name}: no significant difference from softmax on any of {len(rows)} metrics {where}."
    text = f"{name}: better than softmax on {better} and worse on {worse} of {len(rows)} metrics {where}"
    if qualified:
        text += f"; ahead on {qualified} more where its maps do not beat a random map, so not counted as better"
    return text + "."


def _comparisons(names: list[str], results: list[Mapping[str, Result | None]], reference: int, where: str) -> None:
    """An expander per loss against softmax: its headline, the table and the sentences."""
    for i, (name, per_metric) in enumerate(zip(names, results, strict=True)):
        if i == reference:
            continue
        rows, sentences = comparison_rows(name, per_metric, results[reference])
        with st.expander(plain(headline(name, rows, where)), expanded=False):
            show_table(rows)
            for text in sentences:
                st.markdown(f"- {plain(text)}")


def _same_images(loaded: list[tuple[RunRecord, loaders.RunArrays]], n_images: int) -> bool:
    first = loaded[0][1].snapshot_indices[:n_images]
    return all(np.array_equal(arrays.snapshot_indices[:n_images], first) for _, arrays in loaded)


def section(
    loaded: list[tuple[RunRecord, loaders.RunArrays]],
    method: str,
    layer: str,
    every_seed: list[tuple[RunRecord, loaders.RunArrays]] | None = None,
) -> None:
    """Draw the interpretability section for the page's method and layer. ``loaded``: the runs of the seed
    shown; ``every_seed``: the experiment's runs of all its seeds. With several seeds the verdict over the
    seeds comes first and the shown seed's figures over its images second; with one, only the latter."""
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
    several = every_seed is not None and len(seeds.seeds_of([record for record, _ in every_seed])) > 1
    test = f"{stats.SEED_TEST} when there are several, else {stats.IMAGE_TEST}" if several else stats.IMAGE_TEST
    st.caption(
        f"{method} maps of the predicted class at the {cams.LAYERS[layer]}, each on its own scale, on {n_images} "
        "stored test images, next to the same metric for maps that know nothing about the model: a random map, a "
        "centred Gaussian and, for deletion and insertion, the blurred image. "
        + METHOD.format(test=test)
        + " The sanity check (Adebayo et al., 2018) re-initializes the model's top layers; the maps *partly fail* "
        "it when they stay more like the trained model's maps than random maps do. ↑ higher is better, ↓ lower "
        "is better."
    )
    shown_seed = usable[0][0].config.seed if usable[0][0].config else None
    if several and every_seed is not None:
        if not _over_seeds(every_seed, method, layer, n_images):
            return
        st.subheader(f"One training seed (seed {shown_seed}), over its images")
        st.caption(
            f"One trained model per loss, {n_images} images. The intervals and tests over the images say how sure "
            "these numbers are for these models, not whether they survive retraining: the verdict is the one over "
            "the seeds above."
        )
    else:
        st.subheader("One training seed, over the images")
        st.caption(
            f"One trained model per loss, {n_images} images: the tests say how sure these numbers are for these "
            "models, not whether a difference survives retraining. Train several seeds (the Train page's seeds, or "
            "a preset with 3 seeds) to get a verdict over seeds."
        )
    _one_seed(usable, method, layer, n_images, scored=several)


def _one_seed(
    usable: list[tuple[RunRecord, loaders.RunArrays]], method: str, layer: str, n_images: int, scored: bool
) -> None:
    """The metric table of the runs shown and each loss against softmax over the images. ``scored``: the
    runs were scored already (by the seeds' section)."""
    cached = [cams.cached_metrics(record, method, layer, n_images) for record, _ in usable]
    if any(result is None for result in cached):
        if not scored and not st.toggle("Score the maps", key="cam_score"):
            st.caption(SCORING_TIME)
            return
        cached = _score(usable, method, layer, n_images)
    names = [titles.loss_label(record) for record, _ in usable]
    reference = next(
        (i for i, (record, _) in enumerate(usable) if record.config and record.config.loss == REFERENCE_LOSS), None
    )
    if reference is not None and not _same_images(usable, n_images):
        st.warning("These runs stored different test images, so their maps cannot be compared image by image.")
        reference = None
    _verdicts(names, cached, reference, f"on these {n_images} images", "images", method)


def _verdicts(
    names: list[str],
    results: list[Mapping[str, Result | None]],
    reference: int | None,
    where: str,
    over: str,
    method: str = "GradCAM",
) -> None:
    """Each loss against softmax first (the answer), then each loss's metrics against the baseline maps."""
    st.markdown("**Against softmax**")
    if reference is None:
        st.info("No softmax run to compare with on the same images: train one in the same experiment.")
    else:
        _comparisons(names, results, reference, where)
        test = stats.SEED_TEST if over == "seeds" else stats.IMAGE_TEST
        interval = "Student's t intervals" if over == "seeds" else "bootstrap 95% CIs"
        st.caption(
            f"Each loss minus softmax, {'seed by seed' if over == 'seeds' else 'image by image'}, {where}: "
            f"{interval} and a {test}, Holm-adjusted over the metrics."
        )
    st.markdown("**Each metric against the baseline maps**")
    metric_tables(names, results)
    st.caption(reading_guide(over))
    paper_tables = [interpret_table(names, results, over, method)]
    if reference is not None:
        paper_tables.append(versus_reference_table(names, results, reference, over))
    for table in paper_tables:
        st.caption(f"For a paper, one row per loss: {table.caption}")
        downloads.table_buttons(table, key=f"paper-{table.name}")


def _score(
    runs: list[tuple[RunRecord, loaders.RunArrays]], method: str, layer: str, n_images: int
) -> list[dict[str, MetricResult | None]]:
    """Every run's metrics (kept per run and settings), with one progress bar over all of them."""

    def name(run: tuple[RunRecord, loaders.RunArrays]) -> str:
        return titles.loss_label(run[0]) + (f", seed {run[0].config.seed}" if run[0].config else "")

    return layout.each_with_progress(
        runs, name, lambda run, report: cams.metrics(run[0], run[1], method, layer, n_images, report)
    )


def seed_results(
    scored: list[tuple[RunRecord, dict[str, MetricResult | None]]],
) -> tuple[list[str], list[dict[str, SeedResult | None]], int | None]:
    """Each variant's metrics over its seeds from each run's results: the variants' labels (in the order
    they first appear), their :class:`SeedResult` per metric, and which is softmax (None: none is)."""
    runs: dict[str, dict[int, dict[str, MetricResult | None]]] = {}
    losses: dict[str, str] = {}
    for record, results in scored:
        label = titles.loss_label(record)
        runs.setdefault(label, {})[record.config.seed] = results
        losses.setdefault(label, record.config.loss)
    names = list(runs)
    reference = next((i for i, label in enumerate(names) if losses[label] == REFERENCE_LOSS), None)
    return names, [stats.over_seeds(runs[label]) for label in names], reference


def _over_seeds(every_seed: list[tuple[RunRecord, loaders.RunArrays]], method: str, layer: str, n_images: int) -> bool:
    """The verdict over training seeds: each run scored on the same images, each variant's mean over its
    seeds against the baselines, and each loss against softmax seed by seed. False until scored."""
    usable = [(r, a) for r, a in every_seed if a.snapshot_images is not None and r.config is not None]
    n_seeds = len(seeds.seeds_of([record for record, _ in usable]))
    st.subheader(f"Over the {n_seeds} training seeds: the verdict")
    st.caption(
        f"Each run's value is its mean over the same {n_images} images, and each run is one value: the interval "
        f"is Student's t over the seeds and the tests are a {stats.SEED_TEST} (each run against its own "
        "baselines, and each loss against softmax seed by seed: same data subset, initial weights and batch "
        "order), Holm-adjusted over the metrics. This says whether a difference survives retraining. With few "
        "seeds the test has little power: *not distinguishable* then means these seeds cannot tell, not that "
        "the maps equal a random map."
    )
    cached = [cams.cached_metrics(record, method, layer, n_images) for record, _ in usable]
    if any(result is None for result in cached):
        if not st.toggle(f"Score the maps of every seed ({len(usable)} runs)", key="cam_score_seeds"):
            st.caption(SCORING_TIME)
            return False
        cached = _score(usable, method, layer, n_images)
    names, results, reference = seed_results([(record, r) for (record, _), r in zip(usable, cached, strict=True)])
    _verdicts(names, results, reference, f"over {n_seeds} training seeds", "seeds", method)
    return True
