"""Variants x seeds in the app, through Streamlit's AppTest: the Train page's preset, variant and seed
controls, Compare grouped by variant, and one seed at a time on Feature space and Grad-CAM.

A module fixture trains a tiny experiment (digits, softmax and L-Softmax with m = 2 and 4, 2 seeds, 1 epoch
on 300 images) into a temporary runs folder; the Train page test trains its own through the form.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lab.analysis.seed_stats import METRICS
from lab.runs.store import RunStore
from lab.settings import form, presets
from lab.settings.config import RunConfig
from lab.settings.experiment import make_experiment
from lab.training.loop import train_experiment
from tests import apptest
from tests.apptest import app_reads, figures, values
from ui import form_widgets, seeds, session, train_form, variants_editor
from ui.text import plain

EXPERIMENT = "test-variants-x-seeds"
ONE_SEED = "test-variants-one-seed"  # a run per variant: Compare draws a bar per run
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
    single = make_experiment(RunConfig(experiment=ONE_SEED, **TINY), VARIANTS[:2], seeds=[0])
    assert [r.state for r in train_experiment(single, RunStore(root))] == ["finished"] * 2
    with app_reads(root):
        yield root


def title(fig: dict) -> str:
    return fig["layout"].get("title", {}).get("text", "")


def captions(app: AppTest) -> str:
    return " ".join(caption.value for caption in app.caption)


# --- Train ------------------------------------------------------------------------------------------


def added_variants(app: AppTest) -> str:
    """The variants the form lists under the losses (the live view's headings, which name variants too, left
    out)."""
    return " ".join(m.value for m in app.main.markdown if m.value.startswith(":material/call_split:"))


def test_the_train_page_adds_a_variant_and_trains_every_variant_with_every_seed(runs_dir):
    app = open_page("pages/train.py")
    app.button_group(key="losses").set_value(["softmax", "lsoftmax"]).run()
    app.selectbox(key=variants_editor.VARIANT_LOSS).set_value("lsoftmax").run()
    app.text_input(key="variant.lsoftmax.margin").set_value("4")
    app.button(key="add_variant").click().run()
    assert plain("L-Softmax m=4") in added_variants(app), "the added variant is listed, labelled"
    app.text_input(key=form_widgets.SEEDS).set_value("2")
    app.text_input(key="epochs").set_value("1")
    app.text_input(key="train_limit").set_value("300").run()
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
    named = [apptest.shown(bar.proto.text).split("**")[1] for bar in app.get("progress")]
    assert named == [f"{label} · seed {seed}" for seed in (0, 1) for label in LABELS], "each run by variant and seed"
    previews = [m.value for m in app.main.markdown if m.value.startswith("seed ")]
    assert previews == ["seed 0 · epoch 1", "seed 1 · epoch 1"] * 3, "a row of previews per variant, one per seed"
    # a refresh (a new session) starts the form from the settings that started the job
    again = open_page("pages/train.py", experiment=job.experiment)
    assert again.button_group(key="losses").value == ["softmax", "lsoftmax"]
    assert again.text_input(key=form_widgets.SEEDS).value == "2"
    assert plain("L-Softmax m=4") in added_variants(again)
    again.button(key="remove_variant_0").click().run()
    assert plain("L-Softmax m=4") not in added_variants(again)
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
    assert app.text_input(key="epochs").value == str(preset.epochs)
    assert app.text_input(key="train_limit").value == str(preset.train_limit)
    assert all(plain(f"L-Softmax m={m}") in added_variants(app) for m in (2, 3, 4))
    assert "4 variants x 1 seed = 4 runs" in captions(app)


def _form_inputs(app: AppTest) -> dict[str, Any]:
    """The Train form's keyed inputs by key (the preset picker above it left out)."""
    kinds = (app.selectbox, app.checkbox, app.text_input, app.button_group)
    return {w.key: w for kind in kinds for w in kind if w.key and w.key != train_form.PRESET_CHOICE}


def test_filling_a_preset_sends_every_input_it_changes_to_the_browser_and_start_trains_it(runs_dir):
    """A keyed input keeps its identity whatever its arguments, so a browser keeps showing, and sends back on
    the next click, its own value unless the server marks the value as set (``set_value``): every input the
    fill changes must be marked so, or Start trains the form the user saw before."""
    app = open_page("pages/train.py")
    app.text_input(key="epochs").set_value("2").run()
    before = {key: w.value for key, w in _form_inputs(app).items()}
    preset = presets.get("amc-gradcam")
    app.selectbox(key=train_form.PRESET_CHOICE).set_value(preset.name).run()
    app.button(key="fill_preset").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    changed = {key: w for key, w in _form_inputs(app).items() if key in before and w.value != before[key]}
    assert {"dataset", "epochs", "train_limit", "feat_dim_preset", "losses", form_widgets.SEEDS} <= set(changed)
    assert [key for key, w in changed.items() if not w.proto.set_value] == []
    app.button(key="start").click().run()
    owner = session.owner_of(CREDENTIAL)
    manager = session.job_manager()
    job_id = manager.current_job(owner)
    job = manager.get(job_id, owner)
    manager.stop(job_id, owner)
    comparable = [{**c.to_dict(), "experiment": ""} for c in job.configs]
    assert comparable == [{**c.to_dict(), "experiment": ""} for c in preset.configs()]
    deadline = time.time() + 300
    while not job.done and time.time() < deadline:
        time.sleep(0.5)


def test_the_form_names_an_unchanged_preset_after_it_and_a_changed_one_not():
    settings = train_form.preset_settings("center-lambda")
    configs = train_form.experiment_configs(settings)
    expected = presets.get("center-lambda").configs()
    assert "-center-lambda-" in configs[0].experiment
    assert [(c.variant, c.loss_params) for c in configs] == [(c.variant, c.loss_params) for c in expected]
    changed = train_form.experiment_configs(
        form.TrainSettings(
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
    assert len(by_variant) == len(METRICS)
    accuracy = next(f for f in by_variant if title(f).startswith("test accuracy"))
    assert [label.replace("<br>", " ") for label in accuracy["layout"]["yaxis"]["ticktext"]] == LABELS
    dots = [t for t in accuracy["data"] if t["name"].endswith(": seeds")]
    means = [t for t in accuracy["data"] if t["name"].endswith(": mean")]
    assert [len(values(t, "x")) for t in dots] == [2, 2, 2]
    assert all(t["error_x"].get("array") for t in means), "two seeds give every variant an interval"
    for dot, mean in zip(dots, means, strict=True):  # the mean drawn is the mean of the dots
        assert values(mean, "x")[0] == pytest.approx(values(dot, "x").mean())
    sweeps = [f for f in figures(app) if "against m" in title(f)]
    assert len(sweeps) == len(METRICS)
    line = next(t for t in sweeps[0]["data"] if t["name"] == "mean")
    assert list(values(line, "x")) == [2, 4]
    runs = app.dataframe[1].value
    assert len(runs) == 6 and list(runs["loss"]) == LABELS * 2 and list(runs["seed"]) == [0, 0, 0, 1, 1, 1]
    assert len(figures(app)) == 2 * len(METRICS), "the per-run bars give way to the figures by variant"


def bars_start_at_zero(fig: dict) -> bool:
    """Whether every bar of ``fig`` is drawn from zero: its value axis (x for horizontal bars) has a range
    holding zero, or none set (plotly's own range then holds every bar's base, zero)."""
    for trace in fig["data"]:
        if trace["type"] == "bar":
            axis = fig["layout"].get("xaxis" if trace.get("orientation") == "h" else "yaxis", {})
            low, high = axis.get("range", (0.0, 0.0))
            if not low <= 0.0 <= high:
                return False
    return True


@pytest.mark.parametrize("presenting", [False, True])
def test_every_bar_on_compare_starts_at_zero(runs_dir, presenting):
    query = {"present": "1"} if presenting else {}
    one_seed = open_page("pages/compare.py", experiment=ONE_SEED, **query)
    bars = [f for f in figures(one_seed) if any(t["type"] == "bar" for t in f["data"])]
    assert len(bars) == 4, "a bar chart per figure: accuracy, two angles and the silhouette"
    assert all(bars_start_at_zero(f) for f in bars), [f["layout"]["xaxis"].get("range") for f in bars]
    accuracy = next(f for f in bars if title(f).startswith("test accuracy"))
    assert accuracy["layout"]["xaxis"]["range"] == [0.0, 1.0], "percentages on a 0-100% axis"
    seeded = open_page("pages/compare.py", **query)
    assert all(bars_start_at_zero(f) for f in figures(seeded)), "dots and intervals only, or bars from zero"


def test_feature_space_shows_one_seed_at_a_time_titled_by_variant(runs_dir):
    app = open_page("pages/features.py")
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
    headers = [apptest.shown(m.value) for m in gradcam.markdown]
    assert all(f"**{label}**" in headers for label in LABELS), headers
    assert len(gradcam.get("image")) == 6 * (1 + len(LABELS)) + 1  # 6 images x (image + a map per variant), bar


def test_the_live_view_names_each_run_by_its_variant_and_seed():

    from lab.settings.config import RunConfig
    from lab.settings.experiment import make_experiment
    from ui import train_live

    configs = make_experiment(RunConfig(epochs=1), ["lsoftmax:margin=2", "lsoftmax:margin=4"], seeds=[0, 1])
    names = train_live.run_names(configs)
    assert len(set(names)) == 4
    assert "L-Softmax m=4 · seed 1" in names
    single = make_experiment(RunConfig(epochs=1), ["softmax", "amc"])
    assert train_live.run_names(single) == [
        "Softmax cross-entropy",
        "AMC-Loss",
    ]


# --- Grad-CAM interpretability over seeds -------------------------------------------------------------


def test_gradcam_scores_every_seed_and_shows_each_variant_over_its_seeds(runs_dir):
    app = open_page("pages/gradcam.py")
    app.number_input(key="cam_metric_images").set_value(10).run()
    assert "Over the 2 training seeds: the verdict" in [s.value for s in app.subheader]
    app.toggle(key="cam_score_seeds").set_value(True).run()
    assert not app.exception
    headings = [apptest.shown(m.value) for m in app.markdown if m.value.endswith("· 2 seeds")]
    assert headings == [f"**{label}** · 2 seeds" for label in LABELS], "both seeds of every variant are scored"
    headlines = [apptest.shown(e.label) for e in app.expander]  # Markdown with the variant label escaped
    against_softmax = [label.split(":")[0] for label in headlines if "over 2 training seeds" in label]
    assert sorted(against_softmax) == sorted(LABELS[1:]), "each variant, not each loss, against softmax"
    metric_tables = [t.value for t in app.table if "verdict" in t.value.columns]
    assert len(metric_tables) == 2 * len(LABELS), "over the seeds, then the chosen seed's tables"


def test_the_sidebar_counts_variants_and_seeds(runs_dir):
    from ui import titles

    records = [r for r in RunStore(runs_dir).list() if r.experiment == EXPERIMENT]
    assert "digits · 2-D · 3 variants × 2 seeds" in titles.experiment_label(EXPERIMENT, records)
    one_each = [r for r in records if r.config.seed == 0 and r.config.loss == "lsoftmax"]
    assert "· 2 variants " in titles.experiment_label(EXPERIMENT, one_each) + " "
    assert "· 1 loss" in titles.experiment_label(EXPERIMENT, one_each[:1])
