"""The Grad-CAM page and the inspector through Streamlit's AppTest, on a tiny digits experiment, with the
dataset present and absent (then the runs' stored test images are used)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lab.config import RunConfig
from lab.runstore import RunStore
from lab.trainer import train_experiment
from ui import cams, interpretability, loaders, session

APP = os.path.join(os.path.dirname(__file__), "..", "app.py")
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
    if page != "pages/feature_space.py":
        app.switch_page(page)
        app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


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
    assert not app.dataframe, "metrics must wait until asked for"
    app.toggle(key="cam_score").set_value(True).run()
    assert not app.exception, [e.value for e in app.exception]
    table = app.dataframe[0].value
    assert len(table) == len(LOSSES) * 6
    assert {"value", "95% CI", "random map", "centred Gaussian", "blurred image", "verdict"} <= set(table.columns)
    assert set(table["verdict"]) <= {
        "better than a random map",
        "worse than a random map",
        interpretability.NOT_DISTINGUISHABLE,
        interpretability.PASSES_SANITY,
        interpretability.PARTLY_FAILS_SANITY,
        "undefined on these images",
    }
    expanders = [e.label for e in app.expander]
    assert sum("softmax" in label for label in expanders) == len(LOSSES) - 1  # every other loss against softmax
    # a second visit shows the kept results without asking again
    again = open_page("pages/gradcam.py")
    again.number_input(key="cam_metric_images").set_value(STORED).run()
    assert again.dataframe


def test_inspector_follows_the_shared_settings(runs_dir, where):
    app = open_page("pages/feature_space.py")
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
    app = open_page("pages/feature_space.py")
    stored = loaders.run_arrays(RunStore(runs_dir).list()[0]).snapshot_indices
    app.number_input(key=session.INSPECT_INDEX).set_value(int(stored[2])).run()
    assert not app.exception, [e.value for e in app.exception]
    assert not loads, "a stored image was looked up in the dataset"
    outside = int(np.setdiff1d(np.arange(360), stored)[0])
    app.number_input(key=session.INSPECT_INDEX).set_value(outside).run()
    assert not app.exception, [e.value for e in app.exception]
    assert loads and not app.info
    assert any(f"#{outside} · true class" in str(image.proto) for image in app.get("image"))
