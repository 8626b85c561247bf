"""Every registered model, timm-style: shapes for every input size, Grad-CAM layer, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import models
from models.base import FeatureLayer

INPUTS = [(1, 8), (1, 28), (3, 32)]


@pytest.mark.parametrize("name", models.names())
@pytest.mark.parametrize(("channels", "size"), INPUTS)
@pytest.mark.parametrize("feat_dim", [2, 3, 16])
def test_model_maps_images_to_features(name, channels, size, feat_dim):
    model = models.build(name, channels, size, feat_dim)
    images = torch.randn(5, channels, size, size)
    penultimate, features = model.forward_with_penultimate(images)
    assert features.shape == (5, feat_dim)
    assert penultimate.ndim == 2 and penultimate.shape[1] > feat_dim
    assert torch.equal(model(images), features)


@pytest.mark.parametrize("name", models.names())
def test_feature_layer_has_no_activation_after_it(name):
    model = models.build(name, 1, 28, 2)
    assert isinstance(model.feature, FeatureLayer)
    assert [type(m) for m in model.feature] == [nn.Linear, nn.BatchNorm1d]
    # features take both signs in every dimension
    features = model(torch.randn(64, 1, 28, 28))
    assert (features > 0).any(0).all() and (features < 0).any(0).all()


@pytest.mark.parametrize("name", models.names())
@pytest.mark.parametrize(("channels", "size"), INPUTS)
def test_cam_layer_is_a_spatial_layer_inside_the_model(name, channels, size):
    model = models.build(name, channels, size, 2)
    seen = {}

    def record(module, args, out):
        seen["shape"] = out.shape

    handle = model.cam_layer.register_forward_hook(record)
    model(torch.randn(2, channels, size, size))
    handle.remove()
    assert len(seen["shape"]) == 4 and seen["shape"][-1] >= 2
    assert any(module is model.cam_layer for module in model.modules())


@pytest.mark.parametrize("name", models.names())
def test_gradients_reach_every_parameter(name):
    model = models.build(name, 1, 28, 3)
    model(torch.randn(4, 1, 28, 28)).pow(2).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_state_dict_has_no_shared_tensors():
    for name in models.names():
        state = models.build(name, 1, 28, 2).state_dict()
        pointers = [t.data_ptr() for t in state.values() if t.numel()]
        assert len(pointers) == len(set(pointers)), name


def test_unknown_model_lists_the_choices():
    with pytest.raises(models.ModelError, match="choose from: small"):
        models.build("vgg", 1, 28, 2)
