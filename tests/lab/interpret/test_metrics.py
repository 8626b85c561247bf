"""The interpretability metrics on cases whose right answer is known: object mass, the confidence change as the
library computes it, the randomization sanity check on a trained model, rank correlation, and the baseline
maps and references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.metrics.cam_mult_image import DropInConfidence, IncreaseInConfidence
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget
from torch import nn

from lab.interpret import metrics as im
from lab.interpret import scoring
from tests.lab.interpret.cases import patch_images, small_cnn

# pytorch-grad-cam's ROAD imputer calls np.argwhere on a torch tensor, which numpy 2 warns about
pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning")


def test_a_map_exactly_on_the_object_has_object_mass_one_and_a_flat_map_the_foreground_share():
    raw = np.zeros((3, 3, 10, 10), np.uint8)
    raw[:, 0, 2:6, 3:8] = 200  # 20 pixels in the red channel
    raw[:, 2, 8, 8] = 1  # one more pixel, nonzero only in blue
    foreground = im.foreground(raw)
    assert foreground.sum(axis=(1, 2)).tolist() == [21, 21, 21]
    maps = np.stack([foreground[0].astype(np.float32), np.full((10, 10), 0.5, np.float32), np.zeros((10, 10))])
    mass = im.object_mass(maps, raw)
    assert mass[0] == pytest.approx(1.0)
    assert mass[1] == pytest.approx(21 / 100)
    assert np.isnan(mass[2])  # an all-zero map points nowhere


def test_confidence_change_is_the_library_drop_and_increase():
    torch.manual_seed(3)
    model, images = small_cnn(), torch.randn(12, 1, 10, 10)
    maps, targets = im.random_maps(12, (10, 10), seed=4), np.arange(12) % 3
    mine = im.confidence_change(model, images, targets, maps)
    softmax_targets = [ClassifierOutputSoftmaxTarget(int(t)) for t in targets]
    np.testing.assert_allclose(mine.drop, DropInConfidence()(images, maps, softmax_targets, model), atol=1e-6)
    np.testing.assert_array_equal(mine.increase, IncreaseInConfidence()(images, maps, softmax_targets, model))


@pytest.fixture(scope="module")
def trained_digits():
    """A tiny CNN trained for 300 steps on scikit-learn's 8x8 digits (about 90% test accuracy)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images[:, None].astype(np.float32) / 16.0)
    labels = torch.from_numpy(digits.target)
    train, test = slice(0, 1500), slice(1500, None)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),  # the CAM layer: 4 x 4
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),  # the top layer the sanity check re-initializes
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        batch = torch.randint(0, 1500, (64,), generator=generator)
        loss = nn.functional.cross_entropy(model(images[train][batch]), labels[train][batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(images[test]).argmax(1) == labels[test]).float().mean().item()
    assert accuracy > 0.8
    return model, images[test][:100], labels[test][:100].numpy(), digits.images[1500:1600]


def _gradcam(images: torch.Tensor, targets: np.ndarray):
    def cam_fn(model: nn.Module) -> np.ndarray:
        with GradCAM(model, [model[4]]) as cam:
            return cam(images, [ClassifierOutputTarget(int(t)) for t in targets])

    return cam_fn


def test_randomizing_the_top_layer_of_a_trained_model_changes_its_gradcam_maps(trained_digits):
    model, images, labels, _ = trained_digits
    before = [p.detach().clone() for p in model.parameters()]
    similarity = im.randomization_similarity(model, _gradcam(images, labels), ["7"], seed=0)
    assert similarity.shape == (len(images),)
    assert float(np.mean(similarity)) < 0.4
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # original untouched


def test_an_explanation_that_ignores_the_model_fails_the_randomization_check(trained_digits):
    model, images, _, _ = trained_digits
    intensity = lambda _model: images[:, 0].numpy()  # noqa: E731  (an edge-detector-like, model-free map)
    assert np.allclose(im.randomization_similarity(model, intensity, ["7"]), 1.0)


def test_evaluate_reports_randomization_similarity_next_to_a_random_map(trained_digits):
    model, images, labels, raw = trained_digits
    cam_fn = _gradcam(images, labels)
    raw = (raw[:, None] * 255 / 16).astype(np.uint8)
    results = scoring.evaluate(
        model,
        images,
        raw,
        labels,
        cam_fn(model),
        foreground_known=True,
        cam_fn=cam_fn,
        top_layers=["7"],
        metrics=("randomization_similarity", "object_mass"),
    )
    check = results["randomization_similarity"]
    assert check.value < 0.4
    assert abs(check.baseline) < 0.1  # a map against a random map
    mass = results["object_mass"]
    assert 0 <= mass.ci_low <= mass.value <= mass.ci_high <= 1
    share = im.foreground(raw).mean()  # a random map lands on the object as often as the object covers the image
    assert mass.baseline == pytest.approx(share, abs=0.05)


def test_randomized_copy_refuses_modules_it_cannot_reinitialize():
    class Bare(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(3))

    model = nn.Sequential(nn.Linear(3, 3), Bare())
    with pytest.raises(ValueError, match="reset_parameters"):
        im.randomized_copy(model, ["1"])
    with pytest.raises(ValueError, match="at least one"):
        im.randomized_copy(model, [])
    copy = im.randomized_copy(model, ["0"], seed=0)
    assert not torch.equal(copy[0].weight, model[0].weight)
    assert torch.equal(im.randomized_copy(model, ["0"], seed=0)[0].weight, copy[0].weight)  # seeded


def test_rank_correlation_of_identical_reversed_and_flat_maps():
    ramp = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    flat = np.zeros((1, 4, 4), np.float32)
    assert im.rank_correlation(ramp, ramp * 2)[0] == pytest.approx(1.0)
    assert im.rank_correlation(ramp, -ramp)[0] == pytest.approx(-1.0)
    assert im.rank_correlation(flat, flat)[0] == 1.0
    assert im.rank_correlation(ramp, flat)[0] == 0.0


def test_baseline_maps_are_seeded_in_range_and_as_coarse_as_asked():
    a = im.random_maps(4, (28, 28), cam_shape=(7, 7), seed=0)
    assert a.shape == (4, 28, 28) and a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, im.random_maps(4, (28, 28), cam_shape=(7, 7), seed=0))
    assert not np.array_equal(a, im.random_maps(4, (28, 28), cam_shape=(7, 7), seed=1))
    fine = im.random_maps(4, (28, 28), seed=0)
    assert np.abs(np.diff(a, axis=2)).mean() < np.abs(np.diff(fine, axis=2)).mean() / 2
    gauss = im.gaussian_map((9, 9))
    assert gauss[4, 4] == 1.0 and gauss.argmax() == 40 and np.allclose(gauss, gauss.T)


def test_a_flat_map_deletes_pixels_in_a_random_order_not_the_top_rows_first():
    ranks = im.relevance_ranks(np.zeros((1, 12, 12), np.float32), seed=0).reshape(12, 12)
    first_step = ranks < 18
    assert first_step[6:].sum() > 3  # raster order would have taken the first one and a half rows


def test_blurred_reference_keeps_the_mean_and_removes_detail():
    images = patch_images(4)
    reference = im.blurred(images)
    assert reference.shape == images.shape
    assert reference.std() < images.std() / 2
    assert torch.allclose(reference.mean((2, 3)), images.mean((2, 3)), atol=0.1)
