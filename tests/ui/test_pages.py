"""Every page through Streamlit's AppTest, on small experiments trained by a fixture.

The assertions read the figures' content (traces, points, grid cells, table rows), not just the
absence of an exception.
"""

from __future__ import annotations

import functools
import json
import time

import numpy as np
import pytest

from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.settings.experiment import loss_title
from lab.training.loop import train_experiment
from tests import apptest
from tests.apptest import app_reads, figures, values
from ui import session
from ui.text import plain

TWO_D = "test-digits-2d"
THREE_D = "test-digits-3d"
LOSSES = ("softmax", "opl")
CREDENTIAL = "test-browser-credential-".ljust(43, "0")  # what the browser's cookie would hold
open_page = functools.partial(apptest.open_page, experiment=TWO_D, credential=CREDENTIAL)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("app-runs")
    store = RunStore(root)
    train_experiment([RunConfig(loss=loss, epochs=3, experiment=TWO_D, snapshot_points=200) for loss in LOSSES], store)
    train_experiment([RunConfig(loss="softmax", feat_dim=3, epochs=2, experiment=THREE_D)], store)
    with app_reads(root):
        yield root


def test_sidebar_lists_the_experiment_and_its_runs(runs_dir):
    app = open_page("pages/features.py")
    sidebar = " ".join(m.value for m in app.sidebar.markdown)
    assert all(f"**{plain(loss_title(loss))}** :green[finished]" in sidebar for loss in LOSSES)
    assert app.sidebar.selectbox[0].value == TWO_D
    assert app.query_params["exp"] == [TWO_D] or app.query_params["exp"] == TWO_D


def test_the_shipped_example_is_in_the_runs_folder_and_labelled_as_the_example(runs_dir):
    app = open_page("pages/features.py", experiment="example-digits-2d")
    labels = app.sidebar.selectbox[0].options
    assert "example · digits · 2-D · 5 losses × 5 seeds" in labels
    assert not any(label.startswith("example") for label in labels if "5 losses" not in label)
    sidebar = " ".join(m.value for m in app.sidebar.markdown)
    for loss in ("softmax", "lsoftmax", "amc", "opl", "lmd"):
        assert f"**{plain(loss_title(loss))}** · seed 0 :green[finished]" in sidebar


def test_feature_space_draws_each_loss_on_the_unit_circle(runs_dir):
    app = open_page("pages/features.py")
    circles = [f for f in figures(app) if f["data"][0].get("mode") == "lines" and len(values(f["data"][0], "x")) > 100]
    assert len(circles) == len(LOSSES)
    for fig in circles:
        points = [t for t in fig["data"] if t.get("mode") == "markers" and t.get("name") != "selected"]
        rays = [t for t in fig["data"][1:] if t.get("mode") == "lines"]
        assert len(points) == 10 and sum(len(values(t, "x")) for t in points) == 200
        assert len(rays) == 10  # one class direction per class
        radii = np.concatenate([np.hypot(values(t, "x"), values(t, "y")) for t in points])
        assert radii.min() > 0.9 and radii.max() <= 1.0 + 1e-9
    for loss in LOSSES:
        assert sum(loss_title(loss) in f["layout"]["title"]["text"].replace("<br>", " ") for f in circles) == 1, loss


def test_feature_space_raw_view_and_epoch_slider(runs_dir):
    app = open_page("pages/features.py")
    app.slider(key="feature_epoch").set_value(1).run()
    first_epoch = figures(app)[0]
    app.slider(key="feature_epoch").set_value(3).run()
    last_epoch = figures(app)[0]
    assert not np.array_equal(values(first_epoch["data"][1], "x"), values(last_epoch["data"][1], "x"))


def test_feature_space_projection_and_image_inspector(runs_dir):
    app = open_page("pages/features.py")
    projections = [f for f in figures(app) if "PC1" in f["layout"]["title"]["text"]]
    assert len(projections) == len(LOSSES)
    assert sum(len(values(t, "x")) for t in projections[0]["data"]) == 200
    app.segmented_control(key="projection_method_2d_any").set_value("UMAP").run()
    assert not app.exception, [e.value for e in app.exception]
    umaps = [f for f in figures(app) if "UMAP (euclidean)" in f["layout"]["title"]["text"]]
    assert len(umaps) == len(LOSSES) and not app.get("progress")  # the bar is gone once all are drawn
    app.number_input(key="inspect_index").set_value(5).run()
    images = app.get("image")
    assert len(images) == 1 + len(LOSSES) + 1  # the image, one map per loss, the colour bar


def test_a_switch_to_a_2d_experiment_opens_its_projections_on_its_own_default(runs_dir):
    """The 3-D experiment's projection of its features does not carry over to a 2-D one, where it would ask
    for a UMAP of every run instead of the PCA of the penultimate activations the page opens on."""
    app = open_page("pages/features.py", experiment=THREE_D)
    assert [f for f in figures(app) if "PC1" in f["layout"]["title"]["text"]]
    app.sidebar.selectbox(key=session.EXPERIMENT_CHOICE).set_value(TWO_D).run()
    assert not app.exception, [e.value for e in app.exception]
    projections = [f for f in figures(app) if "PC1" in f["layout"]["title"]["text"]]
    assert len(projections) == len(LOSSES)
    assert not [f for f in figures(app) if "UMAP" in f["layout"]["title"]["text"]]


def test_three_d_features_are_drawn_on_a_sphere(runs_dir):
    app = open_page("pages/features.py", experiment=THREE_D)
    spheres = [f for f in figures(app) if f["data"][0]["type"] == "scatter3d" and f["data"][0]["mode"] == "lines"]
    assert len(spheres) == 1
    graticule = np.stack([values(spheres[0]["data"][0], axis) for axis in "xyz"], axis=1)
    drawn = graticule[~np.isnan(graticule).any(axis=1)]
    assert np.isnan(graticule).any() and np.allclose(np.linalg.norm(drawn, axis=1), 1.0)  # circles on the sphere
    markers = [t for t in spheres[0]["data"] if t["type"] == "scatter3d" and t.get("mode") == "markers"]
    assert len([t for t in markers if t.get("name") != "selected"]) == 10


def test_angles_page_histograms_and_direction_spacing(runs_dir):
    app = open_page("pages/angles.py")
    figs = figures(app)
    assert len(figs) == 3 * len(LOSSES)
    own = [f for f in figs if f["layout"]["title"]["text"].startswith("angle of a feature to the")]
    assert len(own) == len(LOSSES)
    assert [t["name"] for t in own[0]["data"]] == ["to own class", "to nearest other class"]
    assert abs(values(own[0]["data"][0], "y").sum() - 1.0) < 1e-6  # shares of all test samples
    spacing = [f for f in figs if "angle to the nearest other" in f["layout"]["title"]["text"]]
    assert len(values(spacing[0]["data"][0], "x")) == 10
    assert spacing[0]["layout"]["annotations"][0]["text"] == "closest pair at most 36.0°"
    text = " ".join(m.value for m in app.markdown)
    assert "within class" in text and "beyond 10°" in text


def test_gradcam_grid_has_a_row_per_image_and_a_column_per_loss(runs_dir):
    app = open_page("pages/gradcam.py")
    app.slider(key="cam_count").set_value(3).run()
    assert not app.exception
    assert len(app.get("image")) == 3 * (1 + len(LOSSES)) + 1  # and the colour bar
    assert app.get("download_button")


def test_gradcam_misclassified_and_chosen_class_modes(runs_dir):
    app = open_page("pages/gradcam.py")
    app.selectbox(key="cam_images").set_value("by class").run()
    app.selectbox(key="cam_class_filter").set_value(7)
    app.selectbox(key="cam_target").set_value("class").run()
    app.selectbox(key="cam_chosen").set_value(2).run()
    assert not app.exception
    assert len(app.get("image")) == 6 * (1 + len(LOSSES)) + 1  # and the colour bar
    assert app.get("image")[0]  # the grid exists for class-7 images


def test_compare_table_has_a_row_per_run_and_every_metric(runs_dir):
    app = open_page("pages/compare.py")
    table = app.dataframe[0].value
    assert list(table["loss"]) == [loss_title(loss) for loss in LOSSES]
    for column in (
        "test accuracy",
        "within-class angle (°)",
        "min between-class angle (°)",
        "cosine silhouette",
        "k-NN accuracy",
        "training time (s)",
    ):
        assert column in table.columns and table[column].notna().all(), column
    assert len(figures(app)) == 4
    per_run = [b for b in app.get("download_button") if b.key.startswith(("zip-", "proj-"))]
    assert len(per_run) == 2 * len(LOSSES)  # a run zip and a projector bundle per run, beside the tables' own


def test_learn_page_explains_every_loss(runs_dir):
    import losses

    app = open_page("pages/learn.py")
    assert len(app.expander) == len(losses.names())
    assert all("Paper" in "".join(m.value for m in e.markdown) for e in app.expander)


def test_another_browser_does_not_see_this_browsers_experiments(runs_dir):
    store = RunStore(runs_dir)
    writer = store.create(RunConfig(experiment="private-exp"), owner=session.owner_of("someone-else".ljust(43, "1")))
    writer.set_status("finished", message="done")
    app = open_page("pages/features.py")
    assert "private-exp" not in app.sidebar.selectbox[0].options


CURVES = ("training loss", "accuracy on ")  # the live view's curves (the previews have no title)


def test_train_page_trains_two_losses_and_lists_the_new_experiment(runs_dir):
    app = open_page("pages/train.py")
    app.button_group(key="losses").set_value(["softmax", "amc"])
    app.text_input(key="epochs").set_value("1")
    app.button(key="start").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert set(app.query_params) == {"exp"}, "neither the credential nor the job is in the address bar"
    manager = session.job_manager()
    owner = session.owner_of(CREDENTIAL)
    job_id = manager.current_job(owner)
    job = manager.get(job_id, owner)
    new_experiment = job.configs[0].experiment
    url_experiment = app.query_params["exp"]
    assert (url_experiment[0] if isinstance(url_experiment, list) else url_experiment) == new_experiment, (
        "the URL names the new experiment even before its first run folder exists, so a refresh finds it"
    )
    deadline = time.time() + 300
    while job.running and time.time() < deadline:
        time.sleep(0.5)
    app.run()
    assert not app.exception
    assert app.sidebar.selectbox[0].value == new_experiment
    assert "2 losses" in app.sidebar.selectbox[0].options[0], "the newest experiment comes first, before the example"
    assert [r.state for r in job.records] == ["finished", "finished"]
    assert any("Done: 2 of 2 runs finished" in s.value for s in app.success)
    assert len(app.get("progress")) == 2
    curves = [f for f in figures(app) if f["layout"].get("title", {}).get("text", "").startswith(CURVES)]
    assert len(curves) == 2 and {t["name"] for t in curves[0]["data"]} == {"Softmax cross-entropy", "AMC-Loss"}
    for record in job.records:  # the runs record the owner id, never the credential
        status = (record.run_dir / "status.json").read_text()
        assert CREDENTIAL not in status and json.loads(status)["owner"] == owner
