"""The inference copy that bulk evaluation runs on gives the model's outputs, faster, and never touches
the model: the interpretability metrics score with it and the trainer evaluates every epoch with it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lab.datasets import load_dataset
from lab.settings.config import RunConfig
from lab.training import evaluation, loop
from lab.training.inference import inference_copy


def test_the_inference_copy_gives_the_same_logits_and_leaves_the_model_alone():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)).train()
    model(torch.randn(16, 1, 10, 10))  # running statistics
    images = torch.randn(6, 1, 10, 10)
    copy = inference_copy(model)
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert copy[0].weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert torch.allclose(copy(images), model.eval()(images), atol=1e-5)


@pytest.mark.parametrize("name", ["small", "lenetpp", "resnet8"])
def test_the_inference_copy_folds_batch_norms_into_convolutions_without_changing_the_outputs(name):
    import models

    torch.manual_seed(0)
    channels, size = (3, 32) if name == "resnet8" else (1, 28)
    model = models.build(name, channels, size, 3)
    model(torch.randn(32, channels, size, size))  # running statistics away from their initial values
    model.eval()
    images = torch.randn(8, channels, size, size)
    with torch.no_grad():
        expected = model(images)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    copy = inference_copy(model)
    with torch.inference_mode():
        assert torch.allclose(copy(images), expected, atol=1e-4)
    norms = lambda m: sum(isinstance(x, nn.BatchNorm2d) for x in m.modules())  # noqa: E731
    assert (norms(copy) < norms(model)) == (name != "lenetpp")  # LeNet++ has no batch norm after a conv
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())


def test_the_trainer_evaluates_on_the_copy_with_the_models_own_outputs():
    dataset = load_dataset("digits")
    model, head = loop.build_model_and_head(RunConfig(), dataset)
    model.train()(dataset.train.normalized[:256])  # running statistics away from their initial values
    images = dataset.test.normalized[:300]
    with torch.inference_mode():
        features = model.eval()(images)
        logits = head.eval().logits(features)
    model.train()
    embedded = evaluation.embed(model, head, images, torch.device("cpu"))
    assert torch.allclose(embedded["features"], features, atol=1e-4)
    assert torch.allclose(embedded["logits"], logits, atol=1e-3)
    assert all(p.requires_grad for p in model.parameters())
