"""The teaching views through Streamlit's AppTest: moving geometry (epoch 0 to the end, rays and titles with
the points, play and pause), decision regions, Angles figures that agree and say what they measure,
same-ray classes named, papers' names in titles, the Compare table and bars, the loss playground and
presentation mode. Each test reads the figures' content, not just the absence of an exception."""

from __future__ import annotations

import dataclasses
import functools
import json
import re

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from lab.analysis import wording
from lab.figures.style import PROJECTOR_INK, TOL_MUTED
from lab.runs.restore import load_trained
from lab.runs.store import RunStore
from lab.runs.tensor_files import RunFeatures, RunSnapshots
from lab.settings.config import RunConfig
from lab.training.loop import train_experiment
from tests import apptest
from tests.apptest import app_reads, figures, shown, values
from ui import session, titles

TWO_D = "teach-digits-2d"
THREE_D = "teach-digits-3d"
SAME_RAY = "teach-same-ray"
OLD_RUN = "teach-old-run"
THREE_LOSSES = "teach-three-losses"
EPOCHS = 3
EVAL_IMAGES = 250  # of digits' 360 test images: each epoch's accuracy is a subset's, the final one the whole set's
open_page = functools.partial(apptest.open_page, experiment=TWO_D, timeout=300)


def _copy_run(store: RunStore, record, experiment: str, change, **settings) -> None:
    """A copy of ``record`` in ``experiment`` (with its other ``settings``) whose features and snapshots
    ``change(features, snapshots)`` rewrites, written through the run store like a trained run."""
    features = store.load_features(record.run_id)
    snapshots = store.load_snapshots(record.run_id)
    features, snapshots = change(features, snapshots)
    writer = store.create(record.config.replace(experiment=experiment, **settings))
    model, head = load_trained(store, record)
    writer.save_weights(model, head)
    writer.save_features(features)
    writer.save_snapshots(snapshots)
    writer.write_metrics(record.metrics)
    writer.set_status("finished", message="done", test_acc=record.status["test_acc"], train_seconds=1.0)


def _merge_classes_1_and_2(features: RunFeatures, snapshots: RunSnapshots):
    directions = features.class_directions.clone()
    directions[2] = directions[1] * 3.0  # the same ray, three times as long
    per_epoch = snapshots.class_directions.clone()
    per_epoch[-1] = directions
    return (
        dataclasses.replace(features, class_directions=directions),
        dataclasses.replace(snapshots, class_directions=per_epoch),
    )


def _as_an_old_run(features: RunFeatures, snapshots: RunSnapshots):
    """The files of a run written before epoch 0 and per-epoch directions were stored."""
    rows = snapshots.epochs > 0
    return features, RunSnapshots(snapshots.indices, snapshots.features[rows], snapshots.epochs[rows])


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("teach-runs")
    store = RunStore(root)
    two_d = train_experiment(
        [
            RunConfig(loss=loss, epochs=EPOCHS, experiment=TWO_D, snapshot_points=200, eval_images=EVAL_IMAGES)
            for loss in ("softmax", "cosface")
        ],
        store,
    )
    train_experiment([RunConfig(loss="cosface", feat_dim=3, epochs=2, experiment=THREE_D)], store)
    _copy_run(store, two_d[1], SAME_RAY, _merge_classes_1_and_2)
    _copy_run(store, two_d[1], OLD_RUN, _as_an_old_run)
    for record, variant in ((two_d[0], ""), (two_d[1], ""), (two_d[1], "CosFace again")):
        _copy_run(store, record, THREE_LOSSES, lambda *files: files, variant=variant)
    with app_reads(root):
        yield root


def feature_panels(app: AppTest) -> list[dict]:
    return [
        f for f in figures(app) if "epoch" in f["layout"]["title"]["text"] or "before" in f["layout"]["title"]["text"]
    ]


def title_lines(title: str) -> list[str]:
    """A feature panel's title as its lines: the loss's name (perhaps wrapped), then the epoch and accuracy."""
    return re.sub(r"</?b>", "", title).split("<br>")


def rays(traces: list[dict]) -> list[np.ndarray]:
    """The tips of the class-direction rays among ``traces``."""
    return [
        np.array([values(t, "x")[1], values(t, "y")[1]])
        for t in traces
        if str(t.get("hovertext", "")).startswith("class direction")
    ]


def captions(app: AppTest) -> str:
    """The page's captions as shown (the notes that quote a run's label are escaped Markdown)."""
    return " ".join(shown(c.value) for c in app.caption)


# ---------------------------------------------------------------- 1. the epoch slider moves everything


def test_the_epoch_slider_starts_before_training_and_moves_points_rays_and_titles(runs_dir):
    app = open_page("pages/features.py")
    slider = app.slider(key="feature_epoch")
    assert (slider.min, slider.max, slider.value) == (0, EPOCHS, EPOCHS)
    last = feature_panels(app)[1]
    slider.set_value(0).run()
    first = feature_panels(app)[1]
    assert first["layout"]["title"]["text"].startswith("<b>CosFace")
    assert "before training" in first["layout"]["title"]["text"]
    assert "epoch 3 · test accuracy" in last["layout"]["title"]["text"]
    assert not np.allclose(np.concatenate(rays(first["data"])), np.concatenate(rays(last["data"])))
    points = [t for t in first["data"] if t.get("mode") == "markers" and t.get("customdata") is not None]
    later = [t for t in last["data"] if t.get("mode") == "markers" and t.get("customdata") is not None]
    assert not np.allclose(values(points[0], "x"), values(later[0], "x"))


def test_each_panel_animates_every_epoch_with_play_and_pause(runs_dir):
    app = open_page("pages/features.py")
    panel = feature_panels(app)[1]
    frames = panel["frames"]
    assert [f["name"] for f in frames] == [str(e) for e in range(EPOCHS + 1)]
    shown_lines = [title_lines(f["layout"]["title"]["text"])[-1] for f in frames]
    store = RunStore(runs_dir)
    record = next(r for r in store.experiments()[TWO_D] if r.config.loss == "cosface")
    measured = store.load_snapshots(record.run_id).test_acc.tolist()
    assert shown_lines[0] == f"before training · accuracy {wording.percent_text(measured[0])} on the 200 images shown"
    for epoch in (1, 2):  # measured on the evaluation subset, and named so
        assert (
            shown_lines[epoch]
            == f"epoch {epoch} · accuracy {wording.percent_text(measured[epoch])} on {EVAL_IMAGES} test images"
        )
    assert shown_lines[3] == f"epoch 3 · test accuracy {wording.percent_text(record.status['test_acc'])}"
    assert not np.allclose(np.concatenate(rays(frames[0]["data"])), np.concatenate(rays(frames[-1]["data"])))
    buttons = panel["layout"]["updatemenus"][0]["buttons"]
    assert [b["args"][0] for b in buttons] == [None, [None]]  # play every frame; pause
    assert buttons[0]["args"][1]["fromcurrent"] is True


def test_a_run_without_per_epoch_directions_says_its_rays_are_the_final_ones(runs_dir):
    app = open_page("pages/features.py", experiment=OLD_RUN)
    assert app.slider(key="feature_epoch").min == 1
    assert "saved before runs stored each epoch's class directions" in captions(app)
    frames = feature_panels(app)[0]["frames"]
    assert np.allclose(np.concatenate(rays(frames[0]["data"])), np.concatenate(rays(frames[-1]["data"])))


# ---------------------------------------------------------------- decision regions


def test_decision_regions_move_with_the_epochs_for_a_bias_free_head(runs_dir):
    app = open_page("pages/features.py")
    app.toggle(key="feature_regions").set_value(True).run()
    assert not app.exception
    softmax, cosface = feature_panels(app)[:2]
    band = next(t for t in cosface["data"] if t.get("name") == "margin band")
    assert len(values(band, "x")) > 0, "CosFace reserves a margin band around each boundary"
    regions = [t for t in cosface["data"] if str(t.get("name", "")).startswith("region ")]
    assert len(regions) == 10

    def region_x(frame: dict) -> np.ndarray:
        return np.concatenate([values(t, "x") for t in frame["data"] if str(t.get("name", "")).startswith("region")])

    frames = cosface["frames"]
    assert region_x(frames[0]).shape != region_x(frames[-1]).shape or not np.allclose(
        region_x(frames[0]), region_x(frames[-1]), equal_nan=True
    )
    assert all(values(t, "x").size == 0 for t in softmax["data"] if t.get("name") == "margin band")
    text = captions(app)
    assert "by angle alone" in text and "they move with the epoch" in text
    assert "the final weights' at every epoch" in text and "median feature length" in text


def test_decision_regions_on_the_sphere_and_its_map(runs_dir):
    app = open_page("pages/features.py", experiment=THREE_D)
    app.toggle(key="feature_regions").set_value(True).run()
    sphere = feature_panels(app)[0]
    surface = next(t for t in sphere["data"] if t["type"] == "surface" and t.get("name") == "regions")
    assert surface.get("surfacecolor") is not None
    app.segmented_control(key="feature_view").set_value("map").run()
    assert not app.exception
    world = feature_panels(app)[0]
    assert any(t["type"] == "heatmap" and t.get("name") == "regions" for t in world["data"])
    stars = [t for t in world["data"] if t.get("marker", {}).get("symbol") == "star"]
    assert len(stars) == 10


# ---------------------------------------------------------------- 2. Angles agree and say what they measure


def test_angles_name_their_definitions_and_the_same_claim_has_the_same_number(runs_dir):
    app = open_page("pages/angles.py")
    headers = [m.value for m in app.markdown if "min between" in m.value]
    spacing = [f for f in figures(app) if "angle to the nearest other" in f["layout"]["title"]["text"]]
    assert len(headers) == len(spacing) == 2
    for header, chart in zip(headers, spacing, strict=True):
        assert "min between class means" in header and "min between classifier weights" in header
        in_header = re.search(r"\*\*([\d.]+)°\*\* min between classifier weights", header).group(1)
        in_chart = re.search(r"min ([\d.]+)°", chart["layout"]["title"]["text"]).group(1)
        assert in_header == in_chart
        assert chart["layout"]["title"]["text"].startswith("classifier weights")
        assert chart["layout"]["xaxis"]["tickvals"] == [str(c) for c in range(10)]
        label = chart["layout"]["annotations"][0]
        assert label["text"] == "closest pair at most 36.0°" and label["bgcolor"].startswith("rgba(255,255,255")
    assert any(f["layout"]["title"]["text"] == "angle of a feature to the classifier weights" for f in figures(app))


def test_the_bound_is_labelled_as_a_bound_on_the_closest_pair_whose_bars_are_outlined():
    from lab import figures as builders

    angles = np.array([[0, 30, 80], [30, 0, 50], [80, 50, 0]], dtype=float)
    fig = builders.direction_spacing(angles, ["a", "b", "c"], best=36.0)
    assert list(fig.data[0].y) == [30, 30, 50]  # c is 50° from its nearest, above the line: no contradiction
    (label,) = fig.layout.annotations
    assert label.text == "closest pair at most 36.0°" and "best possible" not in label.text
    assert list(fig.data[0].marker.line.width) == [2.5, 2.5, 0], "the closest pair's bars, the ones the label is about"
    assert fig.layout.yaxis.range[0] == 0 and fig.layout.yaxis.range[1] > 50
    estimated = builders.direction_spacing(angles, ["a", "b", "c"], best=36.0, known=False)
    assert estimated.layout.annotations[0].text == "closest pair at most about 36.0° (estimate)"


# ---------------------------------------------------------------- 3. same-ray classes


def test_classes_on_one_ray_are_named_on_the_unit_view_only(runs_dir):
    app = open_page("pages/features.py", experiment=SAME_RAY)
    text = captions(app)
    assert "classes 1 and 2 share a direction (0.0° apart)" in text, text
    assert "CosFace (AM-Softmax) has no bias and decides by angle alone" in text
    # one group of classes on a ray: "of their N images shown"; several: "of the N of classes 1 and 2"
    assert re.search(r"it takes \d+% of (their \d+ images shown|the \d+ of classes 1 and 2)", text), text
    assert "length" not in captions(app), "a bias-free head cannot tell classes apart by length"
    app.segmented_control(key="feature_view").set_value("raw").run()
    assert "share a direction" not in captions(app)


# ---------------------------------------------------------------- 10. names, PCA, spheres, picking, Compare


def test_titles_use_the_papers_names(runs_dir):
    app = open_page("pages/features.py")
    names = [title_lines(f["layout"]["title"]["text"])[0] for f in feature_panels(app)]
    assert names == ["Softmax cross-entropy", "CosFace (AM-Softmax)"]


def test_pca_is_not_offered_for_2d_features(runs_dir):
    app = open_page("pages/features.py")
    app.segmented_control(key="projection_source_2d").set_value("features").run()
    assert list(app.segmented_control(key="projection_method_2d_umap_only").options) == ["UMAP"]
    assert not any("PC1" in f["layout"]["title"]["text"] for f in figures(app))
    assert "only a rotation" in captions(app)


def test_spheres_fill_their_panel(runs_dir):
    app = open_page("pages/features.py", experiment=THREE_D)
    sphere = feature_panels(app)[0]
    scene = sphere["layout"]["scene"]
    assert scene["domain"] == {"x": [0, 1], "y": [0, 1]}
    assert (sphere["layout"]["margin"]["l"], sphere["layout"]["margin"]["r"]) == (0, 0)
    eye = scene["camera"]["eye"]
    assert np.linalg.norm([eye["x"], eye["y"], eye["z"]]) < 1.5  # plotly's default eye is 2.17 away


def test_the_picked_image_is_ringed_in_every_panel(runs_dir):
    app = open_page("pages/features.py")
    panel = feature_panels(app)[0]
    image = int(values(next(t for t in panel["data"] if t.get("customdata") is not None), "customdata")[0])
    app.session_state[session.INSPECT_INDEX] = image
    app.run()
    ringed = [
        f for f in figures(app) if any(t.get("name") == "selected" and len(values(t, "x")) == 1 for t in f["data"])
    ]
    assert len(ringed) == 4  # two feature panels and two projections
    assert app.get("image"), "the picked image is shown next to the charts"


def test_compare_percentages_have_one_decimal_and_bars_start_at_zero(runs_dir):
    app = open_page("pages/compare.py")
    config = json.loads(app.dataframe[0].proto.columns)
    assert config["test accuracy"]["type_config"]["format"] == "%.1f%%"
    assert config["k-NN accuracy"]["type_config"]["format"] == "%.1f%%"
    assert all(config[c]["label"] for c in ("test accuracy", "within-class angle (°)", "training time (s)"))
    bars = {f["layout"]["title"]["text"].split("<br>")[0]: f for f in figures(app)}
    accuracy = bars["test accuracy"]
    assert accuracy["layout"]["xaxis"]["range"][0] == 0  # a truncated bar would exaggerate a small difference
    for fig in bars.values():
        colors = fig["data"][0]["marker"]["color"]
        assert not set(np.atleast_1d(colors)) & set(TOL_MUTED), "loss bars must not reuse class colours"


def test_one_test_accuracy_per_run_in_the_titles_the_sidebar_and_compare(runs_dir):
    """The whole test set's accuracy from the run's status, rounded by one rule, wherever a run's test accuracy
    is shown; the per-epoch figures of the evaluation subset are named as such (above)."""
    records = RunStore(runs_dir).experiments()[TWO_D]
    expected = {titles.loss_label(r): wording.percent_text(r.status["test_acc"]) for r in records}
    app = open_page("pages/features.py")
    for panel in feature_panels(app):
        name, detail = title_lines(panel["layout"]["title"]["text"])
        assert detail == f"epoch {EPOCHS} · test accuracy {expected[name]}"
    sidebar = [shown(m.value) for m in app.sidebar.markdown]
    for name, accuracy in expected.items():
        assert any(line.startswith(f"**{name}**") and line.endswith(f"· {accuracy}") for line in sidebar), sidebar
    app.switch_page("pages/compare.py")
    app.run()
    table = app.dataframe[0].value
    assert {row["loss"]: f"{row['test accuracy']:.1f}%" for _, row in table.iterrows()} == expected


# ---------------------------------------------------------------- the loss playground


def test_the_playground_draws_the_real_loss_and_reads_every_loss_at_a_point(runs_dir):
    app = open_page("pages/learn.py")
    app.selectbox(key="playground_loss").set_value("cosface").run()
    field = next(f for f in figures(app) if any(t.get("name") == "loss" for t in f["data"]))
    heat = next(t for t in field["data"] if t.get("name") == "loss")
    assert field["layout"]["title"]["text"].startswith("CosFace")
    assert any(t.get("name") == "margin band" for t in field["data"])
    assert any(t.get("name") == "downhill (−gradient)" for t in field["data"])
    from lab.analysis import playground

    head = playground.head_with_directions("cosface", playground.evenly_spaced(10))
    axis = values(heat, "x")
    expected = float(head(torch.tensor([[axis[7], axis[30]]]), torch.tensor([0]))[0].detach())
    assert values(heat, "z")[30, 7] == pytest.approx(expected)
    app.session_state[session.PLAYGROUND_POINT] = [0.5, 1.0]
    app.run()
    table = app.dataframe[0].value
    assert len(table) == 5 and table["loss"].str.contains("your settings").sum() == 1


# ---------------------------------------------------------------- presentation mode


def test_presentation_mode_shows_two_chosen_losses_side_by_side_at_projector_size(runs_dir):
    app = open_page("pages/features.py", experiment=THREE_LOSSES, present="1")
    assert app.toggle(key=session.PRESENTATION).value is True

    def names() -> list[str]:
        return [title_lines(f["layout"]["title"]["text"])[0] for f in feature_panels(app)]

    assert names() == ["Softmax cross-entropy", "CosFace (AM-Softmax)"]
    for panel in feature_panels(app):
        assert panel["layout"]["font"]["size"] == 18 and panel["layout"]["font"]["color"] == PROJECTOR_INK
        assert panel["layout"]["height"] == 700
    app.selectbox(key="feature_loss_left").set_value("CosFace again").run()
    assert names() == ["CosFace again", "CosFace (AM-Softmax)"]
    app.toggle(key=session.PRESENTATION).set_value(False).run()
    assert len(feature_panels(app)) == 3 and feature_panels(app)[0]["layout"]["font"]["size"] == 12


# ---------------------------------------------------------------- 9. Learn is written for students


def test_learn_shows_formulas_and_student_text_and_a_uniform_table(runs_dir):
    import losses

    app = open_page("pages/learn.py")
    assert len(app.latex) == len(losses.names())
    text = " ".join(m.value for e in app.expander for m in e.markdown)
    assert "``" not in text and "RESULTS.md" not in text and ":func:" not in text
    for table in app.table:
        defaults = list(table.value["default"])
        assert all(isinstance(v, str) for v in defaults)
        assert not any(re.fullmatch(r"-?\d+\.\d*0", v) for v in defaults), defaults  # no "0.2500", "5.0"
