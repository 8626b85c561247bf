"""ROAD, batched: its imputation solves the same system as pytorch-grad-cam's, and its scores are the library
classes' without noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam.metrics.perturbation_confidence import (
    PerturbationConfidenceMetric,
    RemoveLeastRelevantFirst,
    RemoveMostRelevantFirst,
)
from pytorch_grad_cam.metrics.road import NoisyLinearImputer
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

from lab.interpret import metrics as im
from lab.interpret import road as ir
from tests.lab.interpret.cases import small_cnn

# pytorch-grad-cam's ROAD imputer calls np.argwhere on a torch tensor, which numpy 2 warns about
pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning")


@pytest.mark.parametrize("channels, height, width", [(1, 14, 14), (3, 9, 12)])
def test_batched_imputation_solves_the_same_system_as_the_library(channels, height, width):
    torch.manual_seed(0)
    images = torch.randn(5, channels, height, width)
    keep = torch.rand(5, height, width) > torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9])[:, None, None]
    mine = ir.impute(images, keep, noise=0.0)
    library = torch.stack([NoisyLinearImputer(noise=0.0)(images[i], keep[i].float()) for i in range(5)])
    assert torch.allclose(mine, library, atol=5e-3)
    assert torch.equal(mine[keep[:, None].expand_as(mine)], images[keep[:, None].expand_as(images)])


def test_road_matches_the_library_classes_without_noise():
    torch.manual_seed(1)
    model, images = small_cnn(), torch.randn(6, 1, 10, 10)
    maps, targets = im.random_maps(6, (10, 10), seed=2), np.arange(6) % 3
    mine = ir.road(model, images, targets, maps, percentiles=(20, 60), noise=0.0)
    softmax_targets = [ClassifierOutputSoftmaxTarget(int(t)) for t in targets]

    def library(order: type) -> np.ndarray:
        runs = [
            PerturbationConfidenceMetric(order(p, NoisyLinearImputer(noise=0.0)))(images, maps, softmax_targets, model)
            for p in (20, 60)
        ]
        return np.mean(runs, axis=0)

    np.testing.assert_allclose(mine.morf, library(RemoveMostRelevantFirst), atol=1e-4)
    np.testing.assert_allclose(mine.lerf, library(RemoveLeastRelevantFirst), atol=1e-4)
    np.testing.assert_allclose(mine.combined, (mine.lerf - mine.morf) / 2)
