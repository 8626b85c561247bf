"""The Grad-CAM page and the inspector through Streamlit's AppTest, on a tiny digits experiment, with the
dataset present and absent (then the runs' stored test images are used)."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lab.interpret import scoring
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.settings.experiment import make_experiment
from lab.training.loop import train_experiment
from tests import apptest
from tests.apptest import app_reads
from ui import cams, interpretability, loaders, session

APP = apptest.APP
EXPERIMENT = "cam-page-digits"
LOSSES = ("softmax", "amc", "cosface")
CREDENTIAL = "test-gradcam-credential-".ljust(43, "0")
STORED = 60


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cam-runs")
    configs = [RunConfig(loss=loss, epochs=2, experiment=EXPERIMENT, snapshot_points=STORED) for loss in LOSSES]
    train_experiment(configs, RunStore(root))
    previous = os.environ.get("LOSSLENS_RUNS_DIR")
    os.environ["LOSSLENS_RUNS_DIR"] = str(root)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield root
    st.cache_resource.clear()
    st.cache_data.clear()
    if previous is None:
        os.environ.pop("LOSSLENS_RUNS_DIR")
    else:
        os.environ["LOSSLENS_RUNS_DIR"] = previous


@pytest.fixture(params=["dataset", "stored"])
def where(request, monkeypatch):
    """Run each test with the dataset on this machine, and as if it were not (loading it fails)."""
    if request.param == "stored":

        def no_dataset(record):
            raise AssertionError("the page loaded the dataset although it is not on this machine")

        monkeypatch.setattr(cams, "dataset_on_machine", lambda record: False)
        monkeypatch.setattr(loaders, "dataset_of", no_dataset)
    st.cache_data.clear()
    return request.param


def open_page(page: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=300)
    app.session_state[session.CREDENTIAL] = CREDENTIAL
    app.query_params["exp"] = EXPERIMENT
    app.run()
    if page != "pages/features.py":
        app.switch_page(page)
        app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def metric_tables(app: AppTest) -> list:
    """The metric tables on the page (one per loss and scope), in the order they are drawn."""
    return [table.value for table in app.table if "verdict" in table.value.columns]


def test_grid_has_a_column_per_loss_a_color_bar_and_each_map_on_its_own_scale(runs_dir, where):
    app = open_page("pages/gradcam.py")
    app.slider(key="cam_count").set_value(3).run()
    assert not app.exception, [e.value for e in app.exception]
    # three rows of (image + one per loss), then the color bar; no empty columns
    assert len(app.get("image")) == 3 * (1 + len(LOSSES)) + 1
    assert app.session_state[session.CAM_SCALE] == "each map"
    captions = " ".join(c.value for c in app.caption)
    assert "each map on its own scale" in captions
    assert ("runs stored" in captions) == (where == "stored")
    assert app.get("download_button")


def test_wrong_predictions_are_marked_and_the_raw_scale_and_layer_are_options(runs_dir, where):
    app = open_page("pages/gradcam.py")
    app.selectbox(key="cam_images").set_value("misclassified").run()
    images = app.get("image")
    wrong = [i for i in images if ":red[✗" in str(i.proto)]
    assert wrong, "no misclassified image was marked"
    app.segmented_control(key=session.CAM_SCALE).set_value("shared raw").run()
    app.selectbox(key=session.CAM_LAYER).set_value("previous").run()
    assert not app.exception, [e.value for e in app.exception]
    captions = " ".join(c.value for c in app.caption)
    assert "one raw scale per row" in captions and "earlier convolution" in captions
    assert "(8x8 cells)" in captions  # the first convolution of the small model on 8x8 digits


def test_metrics_table_puts_every_metric_next_to_its_baseline_and_compares_with_softmax(runs_dir, where):
    # The server keeps computed metrics across sessions (cache_resource, which ``where`` leaves alone):
    # forget those of the other parameter's run, so this test sees a server that has computed none.
    cams._metrics_done.clear()
    app = open_page("pages/gradcam.py")
    app.number_input(key="cam_metric_images").set_value(STORED).run()
    assert not app.table, "metrics must wait until asked for"
    app.toggle(key="cam_score").set_value(True).run()
    assert not app.exception, [e.value for e in app.exception]
    tables = metric_tables(app)
    assert len(tables) == len(LOSSES) and all(len(table) == 6 for table in tables)  # one table per loss
    columns = ["metric", "value", "95% CI", "random map", "centred Gaussian", "blurred image", "verdict", "adjusted p"]
    assert all(list(table.columns) == columns for table in tables)
    assert {apptest.shown(v) for table in tables for v in table["verdict"]} <= {
        "better than a random map",
        "worse than a random map",
        interpretability.NOT_DISTINGUISHABLE,
        interpretability.PASSES_SANITY,
        interpretability.PARTLY_FAILS_SANITY,
        interpretability.UNDEFINED,
        "not computed for this dataset",
    }
    assert [s.value for s in app.subheader] == ["One training seed, over the images"]  # labelled as one seed
    help_text = " ".join(c.value for c in app.caption)
    assert "paired t-test over the images" in help_text and "Holm-adjusted" in help_text
    expanders = [e.label for e in app.expander]
    assert sum("softmax" in label for label in expanders) == len(LOSSES) - 1  # every other loss against softmax
    assert all(f"on these {STORED} images" in label for label in expanders)
    # a second visit shows the kept results without asking again
    again = open_page("pages/gradcam.py")
    again.number_input(key="cam_metric_images").set_value(STORED).run()
    assert metric_tables(again)


def test_inspector_follows_the_shared_settings(runs_dir, where):
    app = open_page("pages/features.py")
    stored = loaders.run_arrays(RunStore(runs_dir).list()[0]).snapshot_indices
    app.number_input(key=session.INSPECT_INDEX).set_value(int(stored[1])).run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.session_state[session.CAM_SCALE] == "each map"
    app.slider(key=session.CAM_OPACITY).set_value(0.2).run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.session_state[session.CAM_OPACITY] == pytest.approx(0.2)
    if where == "stored":
        missing = int(np.setdiff1d(np.arange(360), stored)[0])
        app.number_input(key=session.INSPECT_INDEX).set_value(missing).run()
        assert any("not among" in i.value for i in app.info)


def test_inspector_loads_the_dataset_only_for_an_image_the_runs_did_not_store(runs_dir, monkeypatch):
    loads = []
    dataset_of = loaders.dataset_of
    monkeypatch.setattr(loaders, "dataset_of", lambda record: loads.append(record) or dataset_of(record))
    st.cache_data.clear()
    app = open_page("pages/features.py")
    stored = loaders.run_arrays(RunStore(runs_dir).list()[0]).snapshot_indices
    app.number_input(key=session.INSPECT_INDEX).set_value(int(stored[2])).run()
    assert not app.exception, [e.value for e in app.exception]
    assert not loads, "a stored image was looked up in the dataset"
    outside = int(np.setdiff1d(np.arange(360), stored)[0])
    app.number_input(key=session.INSPECT_INDEX).set_value(outside).run()
    assert not app.exception, [e.value for e in app.exception]
    assert loads and not app.info
    assert any(f"#{outside} · true class" in str(image.proto) for image in app.get("image"))


def test_the_filed_case_reads_higher_but_worse_than_a_random_map_not_better_than_softmax():
    # AMC 2 points of object mass above softmax image by image, both below what a random map scores
    rng = np.random.default_rng(4)
    random = np.clip(rng.normal(0.495, 0.05, 200), 0, 1)
    softmax = random - 0.047 + rng.normal(0, 0.03, 200)
    amc = softmax + 0.020 + rng.normal(0, 0.01, 200)
    amc_results, softmax_results = (
        {"object_mass": scoring.summarize("object_mass", v, {"random": random})} for v in (amc, softmax)
    )
    rows, sentences = interpretability.comparison_rows("AMC-Loss", amc_results, softmax_results)
    assert [row["outcome"] for row in rows] == ["higher, but worse than a random map"]
    assert rows[0]["minus softmax"].startswith("+2.")
    assert "(better" not in sentences[0]
    headline = interpretability.headline("AMC-Loss", rows, "on these 200 images")
    assert headline.startswith("AMC-Loss: better than softmax on 0 and worse on 0 of 1 metrics")
    table = interpretability.metric_rows(["AMC-Loss"], [amc_results])
    mass = next(row for row in table if row["metric"].startswith("object mass"))
    assert mass["verdict"] == "worse than a random map" and mass["adjusted p"] == "< 0.001"


def test_digits_maps_say_they_are_too_coarse_and_the_button_opens_the_28x28_example(runs_dir):
    app = open_page("pages/gradcam.py")
    notes = [i.value for i in app.info if "too coarse" in i.value]
    assert notes and "These 8x8 images" in notes[0] and "(4x4 cells)" in notes[0], [i.value for i in app.info]
    assert "28x28 example" in notes[0]
    app.button(key="cam_open_example").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.query_params[session.URL_EXPERIMENT] == session.DEFAULT_EXAMPLE
    assert not any("too coarse" in i.value for i in app.info)
    assert "(7x7 cells)" in " ".join(c.value for c in app.caption)  # 28x28 images at the last convolution


SEEDS_EXPERIMENT = "cam-page-seeds"


@pytest.fixture(scope="module")
def seeds_dir(tmp_path_factory):
    """Softmax and AMC, seeds 0 and 1, one quick epoch on digits."""
    root = tmp_path_factory.mktemp("cam-seed-runs")
    base = RunConfig(experiment=SEEDS_EXPERIMENT, epochs=1, train_limit=300, snapshot_points=STORED)
    records = train_experiment(make_experiment(base, ("softmax", "amc"), seeds=[0, 1]), RunStore(root))
    assert [r.state for r in records] == ["finished"] * 4
    return root


def test_with_several_seeds_the_verdict_comes_from_the_seeds_and_one_seed_comes_second(seeds_dir):
    with app_reads(seeds_dir):
        app = apptest.open_page("pages/gradcam.py", experiment=SEEDS_EXPERIMENT, credential=CREDENTIAL)
        app.number_input(key="cam_metric_images").set_value(20).run()
        assert [s.value for s in app.subheader] == ["Over the 2 training seeds: the verdict"]
        toggles = [t.key for t in app.toggle]
        assert not app.table and "cam_score_seeds" in toggles and "cam_score" not in toggles  # one scores all
        app.toggle(key="cam_score_seeds").set_value(True).run()
        assert not app.exception, [e.value for e in app.exception]
        drawn = [
            node.value if node.type == "subheader" else "metric table"
            for node in app.main
            if node.type == "subheader" or (node.type == "table" and "verdict" in node.value.columns)
        ]
        assert drawn == [
            "Over the 2 training seeds: the verdict",
            "metric table",
            "metric table",
            "One training seed (seed 0), over its images",
            "metric table",
            "metric table",
        ]
        headings = [apptest.shown(m.value) for m in app.markdown if m.value.startswith("**")]
        headings = headings[headings.index("**Against softmax**") :]  # after the grid's column titles
        assert headings[:4] == ["**Against softmax**", "**Each metric against the baseline maps**"] + [
            "**Softmax cross-entropy** · 2 seeds",
            "**AMC-Loss** · 2 seeds",
        ]
        over_seeds = metric_tables(app)[0]
        assert all(re.fullmatch(r"< 0\.001|[01]\.\d{3}", apptest.shown(p)) for p in over_seeds["adjusted p"])
        labels = [apptest.shown(e.label) for e in app.expander]  # Markdown with the loss label escaped
        assert len(labels) == 2 and labels[0].startswith("AMC-Loss: ")
        assert "over 2 training seeds" in labels[0] and "on these 20 images" in labels[1]
        outcomes = [apptest.shown(o) for o in app.expander[0].table[0].value["outcome"]]
        assert all(o in ("better", "worse", "no significant difference") or ", but " in o for o in outcomes)
