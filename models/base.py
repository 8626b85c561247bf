"""What every model shares: images in, a low-dimensional feature out.

A model maps an image batch (N x C x H x W) to a feature batch (N x feat_dim). The classifier is
not part of the model; it belongs to the loss head. Every model also exposes

* ``cam_layer``: the last convolutional layer, the target layer for Grad-CAM, and
  ``cam_layer_for("previous")``: an earlier one with a finer map (more cells, less abstract);
* ``forward_with_penultimate(x)``: the high-dimensional activations that feed the feature layer
  (for UMAP/PCA) together with the feature.

The feature layer is ``Linear -> BatchNorm1d`` with no activation after it: angular losses need
features pointing in every direction, and a ReLU there would confine them to one orthant. The
BatchNorm keeps the 2-D/3-D feature centred and well scaled, which is what makes these tiny heads
trainable with SGD (see README, "Defaults").
"""

from __future__ import annotations

import torch
from torch import nn

CAM_LAYERS = ("last", "previous")  # the Grad-CAM layers every model offers, coarsest first


class FeatureLayer(nn.Sequential):
    """Linear projection to the feature dimension followed by BatchNorm, with no activation."""

    def __init__(self, in_dim: int, feat_dim: int) -> None:
        super().__init__(nn.Linear(in_dim, feat_dim, bias=False), nn.BatchNorm1d(feat_dim))


class FeatureNet(nn.Module):
    """Base class: subclasses build ``trunk`` (images to penultimate vector) and ``feature``, and
    set ``cam_layer_name``, the dotted path of the Grad-CAM layer inside the model, and
    ``previous_cam_layer_name``, an earlier convolution whose output has a higher resolution."""

    trunk: nn.Module
    feature: FeatureLayer
    cam_layer_name: str
    previous_cam_layer_name: str

    @property
    def cam_layer(self) -> nn.Module:
        """The last convolutional layer (or block), the target layer for Grad-CAM."""
        return self.get_submodule(self.cam_layer_name)

    def cam_layer_for(self, which: str) -> nn.Module:
        """The Grad-CAM layer ``"last"`` (:attr:`cam_layer`) or ``"previous"`` (higher resolution)."""
        if which not in CAM_LAYERS:
            raise ValueError(f"unknown Grad-CAM layer {which!r} (choose from: {', '.join(CAM_LAYERS)})")
        return self.get_submodule(self.cam_layer_name if which == "last" else self.previous_cam_layer_name)

    def forward_with_penultimate(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        penultimate = self.trunk(images)
        return penultimate, self.feature(penultimate)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.feature(self.trunk(images))


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
