"""``small``: three conv blocks, global average pooling, a feature layer. The fast default.

    conv3x3-32 -> pool -> conv3x3-64 -> [pool] -> conv3x3-128 (Grad-CAM layer) -> GAP(128) -> feature

Two pools for 28x28 and 32x32 inputs (a 7x7 or 8x8 Grad-CAM map), one for 8x8 digits (4x4 map).
"""

from __future__ import annotations

from torch import nn

from models.base import FeatureLayer, FeatureNet, conv_bn_relu
from models.registry import register


@register("small", "3 conv blocks + global average pooling; the fast default for any input size")
class SmallNet(FeatureNet):
    def __init__(self, in_channels: int, image_size: int, feat_dim: int) -> None:
        super().__init__()
        second_pool = [nn.MaxPool2d(2)] if image_size >= 16 else []
        layers = [
            *conv_bn_relu(in_channels, 32),
            nn.MaxPool2d(2),
            *conv_bn_relu(32, 64),
            *second_pool,
            *conv_bn_relu(64, 128),
        ]
        self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.feature = FeatureLayer(128, feat_dim)
        self.cam_layer_name = f"trunk.{len(layers) - 3}"
        # the second conv is at the last conv's resolution when there is one pool, so then the first
        self.previous_cam_layer_name = "trunk.4" if second_pool else "trunk.0"
