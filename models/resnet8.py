"""``resnet8``: a small CIFAR-style ResNet (He et al. 2016): a stem and three stages of one basic
block each (16, 32, 64 channels, strides 1, 2, 2), global average pooling, a feature layer.
"""

from __future__ import annotations

import torch
from torch import nn

from models.base import FeatureLayer, FeatureNet, conv_bn_relu
from models.registry import register


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


@register("resnet8", "small ResNet (3 stages of one basic block, 16-32-64 channels) for CIFAR")
class ResNet8(FeatureNet):
    def __init__(self, in_channels: int, image_size: int, feat_dim: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            *conv_bn_relu(in_channels, 16),
            BasicBlock(16, 16, 1),
            BasicBlock(16, 32, 2),
            BasicBlock(32, 64, 2 if image_size >= 16 else 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.cam_layer_name = "trunk.5"
        # the 32-channel block is strided, so it has the last block's resolution when that one is not
        self.previous_cam_layer_name = "trunk.4" if image_size >= 16 else "trunk.3"
        self.feature = FeatureLayer(64, feat_dim)
