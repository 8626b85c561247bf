"""Variants x seeds in the app, through Streamlit's AppTest: the Train page's preset, variant and seed
controls, Compare grouped by variant, and one seed at a time on Feature space and Grad-CAM.

A module fixture trains a tiny experiment (digits, softmax and L-Softmax with m = 2 and 4, 2 seeds, 1 epoch
on 300 images) into a temporary runs folder; the Train page test trains its own through the form.
"""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lab import presets
from lab.config import RunConfig
from lab.experiment import make_experiment
from lab.runstore import RunStore
from lab.trainer import train_experiment
from tests import apptest
from tests.apptest import app_reads, figures, values
from ui import seeds, session, train_form
from ui.text import plain

EXPERIMENT = "test-variants-x-seeds"
VARIANTS = ("softmax", "lsoftmax:margin=2", "lsoftmax:margin=4")
LABELS = ["Softmax cross-entropy", "L-Softmax m=2", "L-Softmax m=4"]
TINY = {"dataset": "digits", "epochs": 1, "train_limit": 300, "snapshot_points": 100}
CREDENTIAL = "variant-test-credential-".ljust(43, "0")
open_page = functools.partial(apptest.open_page, experiment=EXPERIMENT, credential=CREDENTIAL)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("variant-runs")
    configs = make_experiment(RunConfig(experiment=EXPERIMENT, **TINY), VARIANTS, seeds=[0, 1])
    records = train_experiment(configs, RunStore(root))
    assert [r.state for r in records] == ["finished"] * 6
    with app_reads(root):
        yield root


def title(fig: dict) -> str:
    return fig["layout"].get("title", {}).get("text", "")


def captions(app: AppTest) -> str:
    return " ".join(caption.value for caption in app.caption)


# --- Train ------------------------------------------------------------------------------------------


def test_the_train_page_adds_a_variant_and_trains_every_variant_with_every_seed(runs_dir):
    app = open_page("pages/train.py")
    app.button_group(key="losses").set_value(["softmax", "lsoftmax"]).run()
    app.selectbox(key=train_form.VARIANT_LOSS).set_value("lsoftmax").run()
    app.number_input(key="variant.lsoftmax.margin").set_value(4)
    app.button(key="add_variant").click().run()
    assert any(plain("L-Softmax m=4") in m.value for m in app.main.markdown), "the added variant is listed, labelled"
    app.number_input(key=train_form.SEEDS).set_value(2)
    app.number_input(key="epochs").set_value(1)
    app.number_input(key="train_limit").set_value(300).run()
    assert not app.error, [e.value for e in app.error]
    assert "3 variants x 2 seeds = 6 runs" in captions(app)
    app.button(key="start").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    owner = session.owner_of(CREDENTIAL)
    manager = session.job_manager()
    job = manager.get(manager.current_job(owner), owner)
    assert [(c.variant, c.seed) for c in job.configs] == [(label, seed) for seed in (0, 1) for label in LABELS]
    assert [c.loss_params["margin"] for c in job.configs if c.loss == "lsoftmax"] == [2, 4, 2, 4]
    deadline = time.time() + 300
    while not job.done and time.time() < deadline:
        time.sleep(0.5)
    assert [r.state for r in job.records] == ["finished"] * 6
    app.run()
    assert any("Done: 6 of 6 runs finished" in s.value for s in app.success)
    assert len(app.get("progress")) == 6, "a progress bar per run"
    # a refresh (a new session) starts the form from the settings that started the job
    again = open_page("pages/train.py", experiment=job.experiment)
    assert again.button_group(key="losses").value == ["softmax", "lsoftmax"]
    assert again.number_input(key=train_form.SEEDS).value == 2
    assert any(plain("L-Softmax m=4") in m.value for m in again.main.markdown)
    again.button(key="remove_variant_0").click().run()
    assert not any(plain("L-Softmax m=4") in m.value for m in again.main.markdown)
    assert "2 variants x 2 seeds = 4 runs" in captions(again)


def test_a_preset_states_its_measured_time_and_fills_the_form(runs_dir):
    app = open_page("pages/train.py")
    preset = presets.get("lsoftmax-fig2")
    app.selectbox(key=train_form.PRESET_CHOICE).set_value(preset.name).run()
    assert preset.duration() in captions(app) and preset.measured in captions(app)
    assert any(preset.look_for in m.value for m in app.markdown)
    app.button(key="fill_preset").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert app.button_group(key="losses").value == ["lsoftmax"]
    assert app.number_input(key="epochs").value == preset.epochs
    assert app.number_input(key="train_limit").value == preset.train_limit
    listed = " ".join(m.value for m in app.main.markdown)
    assert all(plain(f"L-Softmax m={m}") in listed for m in (2, 3, 4))
    assert "4 variants x 1 seed = 4 runs" in captions(app)


def test_the_form_names_an_unchanged_preset_after_it_and_a_changed_one_not():
    settings = train_form.preset_settings("center-lambda")
    configs = train_form.experiment_configs(settings)
    expected = presets.get("center-lambda").configs()
    assert "-center-lambda-" in configs[0].experiment
    assert [(c.variant, c.loss_params) for c in configs] == [(c.variant, c.loss_params) for c in expected]
    changed = train_form.experiment_configs(
        train_form.TrainSettings(
            settings.config.replace(epochs=2),
            settings.losses,
            settings.hparams,
            extra=settings.extra,
            seeds=1,
            preset="center-lambda",
        )
    )
    assert "center-lambda" not in changed[0].experiment


# --- Compare, Feature space, Grad-CAM ---------------------------------------------------------------


def test_compare_groups_the_runs_by_variant_with_intervals_and_every_seed(runs_dir):
    app = open_page("pages/compare.py")
    headers = [h.value for h in app.subheader]
    assert "By variant, over seeds" in headers and "L-Softmax against m" in headers and "Every run" in headers
    summary = app.dataframe[0].value
    assert list(summary["variant"]) == LABELS and set(summary["seeds"]) == {"2 of 2"}
    assert list(summary["accuracy vs baseline"])[0] == "baseline"
    by_variant = [f for f in figures(app) if "by variant" in title(f)]
    assert len(by_variant) == 3
    accuracy = next(f for f in by_variant if title(f).startswith("test accuracy"))
    assert accuracy["layout"]["xaxis"]["ticktext"] == LABELS
    dots = [t for t in accuracy["data"] if t["name"].endswith(": seeds")]
    means = [t for t in accuracy["data"] if t["name"].endswith(": mean")]
    assert [len(values(t, "y")) for t in dots] == [2, 2, 2]
    assert all(t["error_y"].get("array") for t in means), "two seeds give every variant an interval"
    for dot, mean in zip(dots, means, strict=True):  # the mean drawn is the mean of the dots
        assert values(mean, "y")[0] == pytest.approx(values(dot, "y").mean())
    sweeps = [f for f in figures(app) if "against m" in title(f)]
    assert len(sweeps) == 3
    line = next(t for t in sweeps[0]["data"] if t["name"] == "mean")
    assert list(values(line, "x")) == [2, 4]
    runs = app.dataframe[1].value
    assert len(runs) == 6 and all(" · seed " in label for label in runs["loss"])
    assert len(figures(app)) == 6, "the per-run bars give way to the figures by variant"


def test_feature_space_shows_one_seed_at_a_time_titled_by_variant(runs_dir):
    app = open_page("pages/feature_space.py")
    choice = app.button_group(key=seeds.SEED_WIDGET)
    assert choice.options and choice.value == 0
    circles = [f for f in figures(app) if "epoch" in title(f) and "PC" not in title(f) and "UMAP" not in title(f)]
    assert len(circles) == 3
    for label in LABELS:
        assert sum(label in title(f).replace("<br>", " ") for f in circles) == 1, label
    first = values(circles[0]["data"][1], "x")
    app.button_group(key=seeds.SEED_WIDGET).set_value(1).run()
    assert not app.exception
    circles = [f for f in figures(app) if "epoch" in title(f) and "PC" not in title(f) and "UMAP" not in title(f)]
    assert len(circles) == 3 and not np.array_equal(first, values(circles[0]["data"][1], "x")), "seed 1's runs"
    gradcam = open_page("pages/gradcam.py", state={seeds.SEED: 1})
    assert gradcam.button_group(key=seeds.SEED_WIDGET).value == 1, "the seed chosen is kept across pages"
    headers = [m.value for m in gradcam.markdown]
    assert all(f"**{label}**" in headers for label in LABELS), headers
    assert len(gradcam.get("image")) == 6 * (1 + len(LABELS)) + 1  # 6 images x (image + a map per variant), bar


def test_the_live_view_names_each_run_by_its_variant_and_seed():
    from types import SimpleNamespace

    from lab.config import RunConfig
    from lab.experiment import make_experiment
    from ui import train_live

    configs = make_experiment(RunConfig(epochs=1), ["lsoftmax:margin=2", "lsoftmax:margin=4"], seeds=[0, 1])
    names = train_live._run_names(SimpleNamespace(configs=configs))
    assert len(set(names.values())) == 4
    assert "L-Softmax m=4 · seed 1" in names.values()
    single = make_experiment(RunConfig(epochs=1), ["softmax", "amc"])
    assert list(train_live._run_names(SimpleNamespace(configs=single)).values()) == [
        "Softmax cross-entropy",
        "AMC-Loss",
    ]


# --- Grad-CAM interpretability over seeds -------------------------------------------------------------


def test_seed_rows_give_each_variant_its_interval_over_seeds_and_its_paired_difference():
    from ui.interpretability import seed_rows

    values = {"deletion_auc": {"Softmax": {0: 0.50, 1: 0.52, 2: 0.54}, "AMC-Loss": {0: 0.40, 1: 0.43, 2: 0.43}}}
    rows = {row["loss"]: row for row in seed_rows(values, "Softmax")}
    assert rows["Softmax"]["seeds"] == "3" and rows["Softmax"]["mean"] == "0.520"
    assert rows["Softmax"]["outcome"] == "the reference" and rows["Softmax"]["minus softmax"] == ""
    amc = rows["AMC-Loss"]
    assert amc["minus softmax"] == "-0.100"  # seed by seed: -0.10, -0.09, -0.11
    low, high = (float(x) for x in amc["95% CI of the difference"].split(" to "))
    assert low < -0.1 < high < 0 and amc["outcome"] == "better", "lower deletion AUC is better"
    values["deletion_auc"]["AMC-Loss"] = {0: 0.40, 1: 0.60, 2: 0.55}
    assert {r["loss"]: r for r in seed_rows(values, "Softmax")}["AMC-Loss"]["outcome"] == "no significant difference"
    one_seed = seed_rows({"road": {"Softmax": {0: 0.1}, "AMC-Loss": {0: 0.2}}}, "Softmax")
    assert [r["95% CI"] for r in one_seed] == ["one seed: no interval"] * 2
    assert one_seed[1]["outcome"] == "needs two paired seeds"


def test_gradcam_scores_every_seed_and_shows_each_variant_over_its_seeds(runs_dir):
    app = open_page("pages/gradcam.py")
    app.number_input(key="cam_metric_images").set_value(10).run()
    assert app.subheader and "Over training seeds" in [s.value for s in app.subheader]
    app.toggle(key="cam_score_seeds").set_value(True).run()
    assert not app.exception
    tables = [frame.value for frame in app.dataframe]
    table = next(t for t in tables if "seeds" in t.columns)
    assert set(table["loss"]) == set(LABELS)
    assert set(table["seeds"]) == {"2"}, "both seeds of every variant are scored"
    others = table[table["loss"] != "Softmax cross-entropy"]
    assert len(others) and all(others["outcome"].isin(["better", "worse", "no significant difference"]))
    assert any("verdict" in t.columns for t in tables), "the chosen seed's table is drawn as well"


def test_the_sidebar_counts_variants_and_seeds(runs_dir):
    from ui import titles

    records = [r for r in RunStore(runs_dir).list() if r.experiment == EXPERIMENT]
    assert "digits · 2-D · 3 variants × 2 seeds" in titles.experiment_label(EXPERIMENT, records)
    one_each = [r for r in records if r.config.seed == 0 and r.config.loss == "lsoftmax"]
    assert "· 2 variants " in titles.experiment_label(EXPERIMENT, one_each) + " "
    assert "· 1 loss" in titles.experiment_label(EXPERIMENT, one_each[:1])
