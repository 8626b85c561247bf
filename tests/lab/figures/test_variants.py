"""The Compare page's figures by variant and against a swept hyperparameter, and the Train form's variants:
pure functions, checked on summaries built from known numbers."""

from __future__ import annotations

import pytest

from lab.analysis.seed_stats import summarize, sweeps
from lab.figures import metric_bars
from lab.figures.variants import summary_rows, sweep_axis, sweep_figure, variant_figure
from lab.settings.config import RunConfig
from lab.settings.errors import ConfigError
from lab.settings.experiment import factor_variants, make_experiment, setting_symbol
from tests.conftest import summary_result as result


def lsoftmax(margin: int) -> dict:
    return {"margin": margin, "base": 1000.0, "gamma": 0.55}


MARGINS = [
    result("Softmax", 0, 0.90),
    result("Softmax", 1, 0.92),
    *(
        result(f"L-Softmax m={m}", s, 0.80 + 0.02 * m + 0.01 * s, loss="lsoftmax", params=lsoftmax(m))
        for m in (4, 2)
        for s in (0, 1)
    ),
    result("L-Softmax m=2", 2, 0.1, loss="lsoftmax", params=lsoftmax(2), state="diverged"),
]


# --- the form's variants ----------------------------------------------------------------------------


def test_the_forms_variants_keep_only_what_sets_them_apart_and_share_the_rest():
    variants, shared = factor_variants(
        [("softmax", {}), ("lsoftmax", {"margin": 2, "base": 10.0}), ("lsoftmax", {"margin": 4, "base": 10.0})]
    )
    assert [v.spec for v in variants] == ["softmax", "lsoftmax:margin=2", "lsoftmax:margin=4"]
    assert shared["lsoftmax"]["base"] == 10.0 and "margin" not in shared["lsoftmax"]
    configs = make_experiment(RunConfig(experiment="e"), variants, shared, seeds=[0, 1])
    assert [c.variant for c in configs[:3]] == ["Softmax cross-entropy", "L-Softmax m=2", "L-Softmax m=4"]
    assert {c.loss_params["base"] for c in configs if c.loss == "lsoftmax"} == {10.0}


def test_a_loss_with_one_variant_is_labelled_by_its_title_and_keeps_every_value():
    variants, shared = factor_variants([("cosface", {"margin": 0.2})])
    (config,) = make_experiment(RunConfig(), variants, shared)
    assert config.variant == "CosFace (AM-Softmax)" and config.loss_params["margin"] == 0.2


def test_two_identical_variants_and_bad_values_are_refused():
    variants, shared = factor_variants([("lsoftmax", {"margin": 3}), ("lsoftmax", {"margin": 3})])
    with pytest.raises(ConfigError, match="named more than once with the same settings"):
        make_experiment(RunConfig(), variants, shared)
    with pytest.raises(ConfigError, match="lsoftmax.margin: must be"):
        factor_variants([("lsoftmax", {"margin": 9})])


def test_a_setting_is_named_by_its_papers_symbol():
    assert setting_symbol("lsoftmax", "margin") == "m" and setting_symbol("center", "weight") == "lambda"
    assert setting_symbol("arcface", "margin") == "margin"


# --- sweeps -----------------------------------------------------------------------------------------


def test_a_sweep_is_a_loss_whose_variants_differ_in_one_setting_ordered_by_its_value():
    (sweep,) = sweeps(summarize(MARGINS))
    assert (sweep.loss, sweep.setting, sweep.values()) == ("lsoftmax", "margin", [2, 4])
    two_settings = [
        result("A", 0, 0.9, loss="lsoftmax", params={"margin": 2, "base": 1.0}),
        result("B", 0, 0.9, loss="lsoftmax", params={"margin": 3, "base": 2.0}),
    ]
    assert sweeps(summarize(two_settings)) == [], "two settings differ: no single axis"
    assert sweeps(summarize([result("A", 0, 0.9, loss="lsoftmax", params={"margin": 2})])) == []


def test_the_swept_axis_is_logarithmic_only_across_decades():
    assert sweep_axis([0.0001, 0.001, 0.01, 0.1]) == "log"
    assert sweep_axis([1, 2, 3, 4]) == "linear" and sweep_axis([0.0, 0.5]) == "linear"
    assert sweep_axis(["truth", "prediction"]) == "category" and sweep_axis([True, False]) == "category"


# --- figures ----------------------------------------------------------------------------------------


def traces(fig, suffix: str) -> list:
    return [trace for trace in fig.data if trace.name.endswith(suffix)]


def test_the_variant_figure_draws_every_seed_and_the_mean_with_its_interval():
    found = summarize(MARGINS)
    fig = variant_figure(found, "test_acc")
    assert list(fig.layout.yaxis.ticktext) == ["Softmax", "L-Softmax m=4", "L-Softmax m=2"]
    assert fig.layout.yaxis.range[0] > fig.layout.yaxis.range[1], "the first variant on top"
    dots, means = traces(fig, ": seeds"), traces(fig, ": mean")
    assert [len(trace.x) for trace in dots] == [2, 2, 2], "the diverged seed is not drawn"
    assert list(dots[0].x) == [0.90, 0.92]
    stats = found[0].stats["test_acc"]
    bar = means[0].error_x
    assert means[0].x[0] == pytest.approx(stats.mean)
    assert bar.array[0] == pytest.approx(stats.ci_high - stats.mean)
    assert bar.arrayminus[0] == pytest.approx(stats.mean - stats.ci_low)
    assert fig.layout.xaxis.tickformat == ".1%" and "95% CI" in fig.layout.title.text
    assert not [trace for trace in fig.data if trace.type == "bar"], "a dot plot: its axis need not start at zero"
    angles = variant_figure(found, "mean_within_class_angle")
    assert angles.layout.xaxis.tickformat is None and "within-class angle" in angles.layout.title.text


def test_one_seed_has_no_error_bar_and_a_variant_without_a_finished_run_is_left_out():
    found = summarize([result("A", 0, 0.9), result("B", 0, 0.8, state="failed")])
    fig = variant_figure(found, "test_acc")
    assert list(fig.layout.yaxis.ticktext) == ["A"]
    (mean,) = traces(fig, ": mean")
    assert mean.error_x.visible is False and "no interval" in fig.layout.title.text


def test_long_variant_names_read_whole_and_level_beside_their_rows():
    names = ["Softmax cross-entropy", "Orthogonal Projection Loss (OPL)", "L-Softmax m=2", "L-Softmax m=4"]
    found = summarize([result(name, seed, 0.9 + 0.01 * seed) for name in names for seed in (0, 1)])
    fig = variant_figure(found, "min_between_class_angle")
    labels = list(fig.layout.yaxis.ticktext)
    assert list(fig.layout.yaxis.tickvals) == [0, 1, 2, 3], "every variant has its label: none dropped"
    assert [label.replace("<br>", " ") for label in labels] == names
    assert all(len(line) <= 16 for label in labels for line in label.split("<br>"))
    assert labels[1] == "Orthogonal<br>Projection Loss<br>(OPL)"


def test_the_per_run_bars_start_at_zero_and_percentages_span_0_to_100():
    fig = metric_bars({"L-Softmax": 0.864, "CosFace": 0.870}, "test accuracy", percent=True)
    assert tuple(fig.layout.xaxis.range) == (0.0, 1.0), "86.4% against 87.0% must not look like half a bar"
    assert "zoomed" not in fig.layout.title.text
    angles = metric_bars({"A": 0.29, "B": 29.73}, "min between-class angle (°)")
    low, high = angles.layout.xaxis.range
    assert low == 0.0 and high > 29.73
    silhouette = metric_bars({"A": -0.2, "B": 0.8}, "cosine silhouette")
    low, high = silhouette.layout.xaxis.range
    assert low < -0.2 and high > 0.8


def test_the_sweep_figure_plots_each_figure_against_the_setting():
    (sweep,) = sweeps(summarize(MARGINS))
    fig = sweep_figure(sweep, "min_between_class_angle")
    (line,) = [trace for trace in fig.data if trace.name == "mean"]
    assert list(line.x) == [2, 4]
    assert list(line.y) == [pytest.approx(20 * 0.845), pytest.approx(20 * 0.885)]
    assert fig.layout.xaxis.title.text == "m" and fig.layout.xaxis.type == "linear"
    assert "against m · L-Softmax" in fig.layout.title.text
    dots = traces(fig, ": seeds")
    assert [list(trace.x) for trace in dots] == [[2, 2], [4, 4]]


def test_the_summary_table_gives_means_intervals_and_the_paired_difference():
    rows = summary_rows(summarize(MARGINS))
    assert [row["variant"] for row in rows] == ["Softmax", "L-Softmax m=4", "L-Softmax m=2"]
    assert rows[0]["seeds"] == "2 of 2" and rows[2]["seeds"] == "2 of 3"
    assert rows[0]["test accuracy"].startswith("91.0% [") and rows[0]["accuracy vs baseline"] == "baseline"
    # m=2 seed by seed minus softmax: 0.84 - 0.90 and 0.85 - 0.92
    assert rows[2]["accuracy vs baseline"].startswith("-6.5 pts [")
    assert "diverged" in rows[2]["notes"]
    (one,) = summary_rows(summarize([result("A", 0, 0.9)]))
    assert one["test accuracy"] == "90.0%" and "no confidence interval" in one["notes"]
