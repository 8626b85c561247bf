"""Grad-CAM on a real tiny run: raw maps from the library's methods, targets, scores, no side effects."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

import models
from lab import datasets
from lab.datasets import load_dataset
from lab.interpret import gradcam, scoring
from lab.runs.restore import load_trained
from lab.runs.store import RunStore
from lab.settings.config import RunConfig

N_IMAGES = 6
# pytorch-grad-cam's ROAD imputer calls np.argwhere on a torch tensor, which numpy 2 warns about
pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning")


@pytest.fixture
def trained(digits_run):
    """A freshly loaded model and head, so no test sees what another did to them."""
    store, record, digits = digits_run
    model, head = load_trained(store, record, digits)
    return model, head, digits.test.normalized[:N_IMAGES], digits.test.labels[:N_IMAGES].numpy()


def _hooks(module: torch.nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) + len(m._backward_pre_hooks)
        for m in module.modules()
    )


@pytest.mark.parametrize("method", list(gradcam.CAM_METHODS))
def test_every_method_gives_finite_non_negative_maps_at_the_image_size(trained, method):
    model, head, images, labels = trained
    result = gradcam.compute_cams(model, head, images, method, labels)
    assert result.maps.shape == (N_IMAGES, 8, 8)
    assert result.maps.dtype == np.float32
    assert np.isfinite(result.maps).all()
    assert (result.maps >= 0).all()
    assert result.maps.max() > 0
    assert result.cam_shape == (4, 4)  # the small model's CAM layer on 8x8 digits


@pytest.mark.parametrize("method", list(gradcam.CAM_METHODS))
def test_raw_maps_are_the_library_maps_before_its_min_max_scaling(trained, method):
    model, head, images, labels = trained
    result = gradcam.compute_cams(model, head, images, method, labels)
    wrapper = gradcam.InferenceLogits(model, head)
    with gradcam.CAM_METHODS[method](wrapper, [model.cam_layer]) as cam:
        library = cam(images.clone(), [ClassifierOutputTarget(int(t)) for t in labels])
    np.testing.assert_allclose(gradcam.normalize_each(result.maps), library, atol=1e-3)


def test_raw_maps_keep_their_scale(trained):
    model, head, images, labels = trained
    maps = gradcam.compute_cams(model, head, images, "GradCAM", labels).maps
    peaks = maps.max(axis=(1, 2))
    assert not np.allclose(peaks, 1.0, atol=1e-3)
    assert peaks.max() > 1.1 * peaks.min() > 0
    assert np.allclose(gradcam.normalize_each(maps).max(axis=(1, 2)), 1.0, atol=1e-5)


def test_wrapper_returns_exactly_the_inference_logits(trained):
    model, head, images, _ = trained
    with torch.no_grad():
        assert torch.equal(gradcam.InferenceLogits(model, head)(images), head.logits(model(images)))


def test_predictions_and_probabilities_come_from_the_inference_logits(trained):
    model, head, images, _ = trained
    with torch.no_grad():
        probs = head.logits(model(images)).softmax(1)
    result = gradcam.compute_cams(model, head, images, "GradCAM", np.full(N_IMAGES, 3))
    np.testing.assert_array_equal(result.predicted, probs.argmax(1).numpy())
    np.testing.assert_allclose(result.confidence, probs.max(1).values.numpy(), rtol=1e-5)
    np.testing.assert_allclose(result.target_probability, probs[:, 3].numpy(), rtol=1e-5)


def test_resolve_targets_modes():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5]])
    labels = torch.tensor([2, 0])
    np.testing.assert_array_equal(gradcam.resolve_targets(logits, labels, "predicted"), [1, 0])
    np.testing.assert_array_equal(gradcam.resolve_targets(logits, labels, "true"), [2, 0])
    np.testing.assert_array_equal(gradcam.resolve_targets(logits, None, "class", 2), [2, 2])
    assert gradcam.resolve_targets(logits, labels, "true").dtype == np.int64
    with pytest.raises(ValueError, match="labels"):
        gradcam.resolve_targets(logits, None, "true")
    with pytest.raises(ValueError, match="from 0 to 2"):
        gradcam.resolve_targets(logits, labels, "class", 3)
    with pytest.raises(ValueError, match="predicted, true, class"):
        gradcam.resolve_targets(logits, labels, "best")


def test_the_target_class_changes_the_map(trained):
    model, head, images, labels = trained
    own = gradcam.compute_cams(model, head, images, "GradCAM", labels)
    other = gradcam.compute_cams(model, head, images, "GradCAM", (labels + 5) % 10)
    np.testing.assert_array_equal(own.targets, labels)
    assert not np.allclose(own.maps, other.maps)


def test_bad_targets_and_methods_are_refused(trained):
    model, head, images, labels = trained
    with pytest.raises(ValueError, match="from 0 to 9"):
        gradcam.compute_cams(model, head, images, "GradCAM", np.full(N_IMAGES, 10))
    with pytest.raises(ValueError, match="targets for"):
        gradcam.compute_cams(model, head, images, "GradCAM", labels[:2])
    with pytest.raises(ValueError, match="GradCAM"):
        gradcam.compute_cams(model, head, images, "GuessCAM", labels)
    assert _hooks(model) == 0


@pytest.mark.parametrize("method", ["GradCAM", "ScoreCAM"])
def test_no_hooks_grads_or_flag_changes_are_left_behind(trained, method):
    model, head, images, labels = trained
    model.train()
    head.train()
    frozen = next(head.parameters())
    frozen.requires_grad_(False)
    kept_grad = torch.ones_like(model.cam_layer.weight)
    model.cam_layer.weight.grad = kept_grad
    flags = [m.training for m in (*model.modules(), *head.modules())]
    requires = [p.requires_grad for p in (*model.parameters(), *head.parameters())]
    result = gradcam.compute_cams(model, head, images, method, labels)
    assert _hooks(model) == 0 and _hooks(head) == 0
    assert [m.training for m in (*model.modules(), *head.modules())] == flags
    assert [p.requires_grad for p in (*model.parameters(), *head.parameters())] == requires
    assert model.cam_layer.weight.grad is kept_grad
    assert all(p.grad is None for p in (*model.parameters(), *head.parameters()) if p is not model.cam_layer.weight)
    # the maps were computed in eval mode even though the model came in training mode
    model.eval()
    head.eval()
    again = gradcam.compute_cams(model, head, images, method, labels)
    np.testing.assert_allclose(result.maps, again.maps, rtol=1e-4, atol=1e-6)


def test_hooks_are_released_when_the_computation_fails(trained, monkeypatch):
    model, head, images, labels = trained

    def broken(*args, **kwargs):
        assert _hooks(model) > 0  # the CAM's hooks are in place here
        raise RuntimeError("boom")

    monkeypatch.setattr(gradcam, "_maps", broken)
    with pytest.raises(RuntimeError, match="boom"):
        gradcam.compute_cams(model, head, images, "GradCAM", labels)
    assert _hooks(model) == 0
    assert all(p.requires_grad for p in model.parameters())


def test_inference_mode_callers_get_maps_too(trained):
    model, head, images, labels = trained
    with torch.inference_mode():
        result = gradcam.compute_cams(model, head, images.clone(), "GradCAM", labels)
    assert result.maps.max() > 0


def test_shared_scale_covers_every_map_of_a_row(trained):
    model, head, images, labels = trained
    row = [gradcam.compute_cams(model, head, images, m, labels).maps[0] for m in gradcam.CAM_METHODS]
    vmin, vmax = gradcam.shared_scale(row)
    assert vmin == 0.0
    assert all(vmin <= m.min() and m.max() <= vmax for m in row)
    assert vmax == pytest.approx(max(float(m.max()) for m in row))
    assert gradcam.shared_scale([np.zeros((8, 8)), np.zeros((8, 8))]) == (0.0, 1.0)


def test_overlay_colors_the_map_on_an_rgb_copy_of_the_image():
    image = np.full((1, 8, 8), 100, dtype=np.uint8)
    cam = np.zeros((8, 8), dtype=np.float32)
    cam[0, 0] = 2.0
    plain = gradcam.overlay(image, cam, vmax=2.0, alpha=0.0)
    assert plain.shape == (8, 8, 3) and plain.dtype == np.uint8
    assert (plain == 100).all()
    full = gradcam.overlay(image, cam, vmax=2.0, alpha=1.0)
    np.testing.assert_array_equal(full[0, 0], gradcam._LUT[255])
    np.testing.assert_array_equal(full[1, 1], gradcam._LUT[0])
    assert not np.array_equal(full[0, 0], full[1, 1])
    with pytest.raises(ValueError, match="does not match"):
        gradcam.overlay(image, np.zeros((4, 4)), vmax=1.0)


def test_grid_png_decodes_at_the_expected_size_with_nearest_neighbour_cells():
    red = np.zeros((8, 8, 3), dtype=np.uint8)
    red[..., 0] = 255
    cells = [[red, red, red], [red, red, red]]
    factor = -(-gradcam.GRID_CELL_PX // 8)
    unlabelled = Image.open(io.BytesIO(gradcam.grid_png(cells, ["", ""], ["", "", ""])))
    gap = 4
    assert unlabelled.size == (2 * gap + 3 * (8 * factor + gap), 2 * gap + 2 * (8 * factor + gap))
    assert unlabelled.getpixel((2 * gap + 5, 2 * gap + 5)) == (255, 0, 0)
    labelled = Image.open(io.BytesIO(gradcam.grid_png(cells, ["image 1", "image 2"], ["softmax", "center", "amc"])))
    assert labelled.format == "PNG" and labelled.mode == "RGB"
    assert labelled.width > unlabelled.width and labelled.height > unlabelled.height
    with pytest.raises(ValueError, match="rows"):
        gradcam.grid_png(cells, ["one row label"], ["a", "b", "c"])


# ---------------------------------------------------------------- layers, stored images, legends, metrics


@pytest.mark.parametrize("name", models.names())
@pytest.mark.parametrize(("channels", "size"), [(1, 8), (1, 28), (3, 32)])
def test_every_model_offers_an_earlier_cam_layer_with_a_finer_map(name, channels, size):
    model = models.build(name, channels, size, 3).eval()
    shapes = {}
    hooks = [
        model.cam_layer_for(which).register_forward_hook(
            lambda module, args, out, which=which: shapes.__setitem__(which, out.shape[-2:])
        )
        for which in models.CAM_LAYERS
    ]
    with torch.no_grad():
        model(torch.zeros(2, channels, size, size))
    for hook in hooks:
        hook.remove()
    assert model.cam_layer_for("last") is model.cam_layer
    assert shapes["previous"][0] > shapes["last"][0], (name, size, shapes)
    with pytest.raises(ValueError, match="choose from: last, previous"):
        model.cam_layer_for("first")


def test_the_previous_layer_gives_finer_maps(trained):
    model, head, images, labels = trained
    result = gradcam.compute_cams(model, head, images, "GradCAM", labels, layer="previous")
    assert result.cam_shape == (8, 8)  # the first convolution of the small model on 8x8 digits
    assert result.maps.shape == (N_IMAGES, 8, 8) and result.maps.max() > 0


@pytest.mark.parametrize("name", sorted(datasets.names()))
def test_declared_train_statistics_are_the_datasets_own(name):
    if not (datasets.info(name).offline or datasets.info(name).local_copy()):
        pytest.skip(f"{name} is not on this machine")
    data = load_dataset(name)
    mean, std = datasets.info(name).train_statistics
    np.testing.assert_allclose(mean, data.train.mean, rtol=1e-6)
    np.testing.assert_allclose(std, data.train.std, rtol=1e-6)


def test_colorbar_and_marked_grid_render():
    bar = Image.open(io.BytesIO(gradcam.colorbar_png("0", "1", "scale")))
    pixels = np.asarray(bar.convert("RGB"))
    ramp = pixels[pixels.shape[0] // 2]
    assert bar.width == 320 and not np.array_equal(ramp[5], ramp[-5])  # the colours run from low to high
    cell = np.full((8, 8, 3), 128, np.uint8)
    marked = gradcam.framed(cell)
    assert tuple(marked[0, 0]) == gradcam.WRONG_COLOR and tuple(marked[4, 4]) == (128, 128, 128)
    png = gradcam.grid_png([[cell, cell]], ["row"], ["a", "b"], [[False, True]], gradcam.colorbar_png("0", "1", "t"))
    grid = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    red = np.all(grid == gradcam.WRONG_COLOR, axis=2)
    assert red.any() and grid.shape[0] > 96 + bar.height  # a red border, and the bar under the cells


def test_interpretability_scores_every_reported_metric_against_its_baseline(digits_run):
    store, record, digits = digits_run
    model, head = load_trained(store, record)
    raw = digits.test.images[:24].numpy()
    seen = []
    results = gradcam.interpretability(
        model,
        head,
        raw,
        datasets.info("digits").train_statistics,
        foreground_known=True,
        progress=lambda fraction, text: seen.append(fraction),
    )
    for name in scoring.REPORTED:
        result = results[name]
        assert result is not None and result.value is not None and result.baseline is not None, name
        assert result.ci_low <= result.value <= result.ci_high, name
        assert result.n_images > 1
    assert seen and seen[-1] == 1.0 and all(b >= a - 1e-9 for a, b in zip(seen, seen[1:], strict=False))
    # the randomization check: a trained model's maps change when its top layers are re-initialized
    assert results["randomization_similarity"].value < 0.9


def test_interpret_command_prints_a_json_line_per_run_without_the_dataset(tmp_path, capsys, monkeypatch):
    from lab import datasets
    from lab.cli import main as cli
    from lab.settings.experiment import make_experiment
    from lab.training.loop import train_experiment

    store = RunStore(tmp_path)
    base = RunConfig(epochs=1, experiment="cli-cam", snapshot_points=30)
    train_experiment(make_experiment(base, ("softmax", "amc"), seeds=[0, 1]), store)

    def no_dataset(*args, **kwargs):
        raise AssertionError("interpret loaded the dataset")

    datasets.load_dataset.cache_clear()
    monkeypatch.setattr(type(datasets.info("digits")), "read", no_dataset)  # every way of loading digits reads
    code = cli.main(["interpret", "--experiment", "cli-cam", "--runs-dir", str(tmp_path), "--images", "20"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    runs = [line for line in lines if line["over"] == "images"]
    assert sorted(line["loss"] for line in runs) == ["amc", "amc", "softmax", "softmax"]
    for line in runs:
        assert line["method"] == "GradCAM" and line["images"] == 20 and line["layer"] == "last"
        assert "paired t-test over the images" in line["test"] and "Holm" in line["test"]
        assert set(line["metrics"]) == set(scoring.REPORTED)
        for name, metric in line["metrics"].items():
            if metric is None:
                continue
            assert {"verdict", "p", "p_adjusted", "against"} <= set(metric) and "distinguishable" not in metric, name
            assert metric["verdict"] in ("better", "worse", "not distinguishable"), name
            assert metric["p_adjusted"] >= metric["p"], name
            assert metric["against"]["random"]["verdict"] == metric["verdict"], name
    # with several seeds, a line per variant gives the verdict over the seeds and against softmax
    over_seeds = {line["variant"]: line for line in lines if line["over"] == "seeds"}
    assert set(over_seeds) == {"Softmax cross-entropy", "AMC-Loss"}
    amc = over_seeds["AMC-Loss"]
    assert amc["seeds"] == [0, 1] and "paired t-test over the training seeds" in amc["test"]
    assert amc["metrics"]["road"]["verdict"] in ("better", "worse", "not distinguishable")
    assert amc["vs_reference"]["variant"] == "Softmax cross-entropy"
    versus = amc["vs_reference"]["metrics"]["road"]
    assert {"difference", "p_adjusted", "outcome"} <= set(versus)
    assert over_seeds["Softmax cross-entropy"]["vs_reference"] is None
    assert "100%" in err  # the progress bar reached the end
    assert cli.main(["interpret", "--experiment", "nope", "--runs-dir", str(tmp_path)]) == 2
    assert "experiments there: cli-cam" in capsys.readouterr().err
