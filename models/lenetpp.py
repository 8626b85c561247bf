"""``lenetpp``: the LeNet++ layout of the center-loss and L-Softmax papers (Wen et al. 2016, Fig. 2
of Liu et al. 2016).

    [conv5x5-32, PReLU] x2 -> pool -> [conv5x5-64, PReLU] x2 -> pool -> [conv5x5-128, PReLU] x2
    -> pool -> flatten -> feature

Deviation from the paper, on purpose: the feature layer is Linear + BatchNorm with no PReLU after
it (the paper has PReLU), because PReLU's asymmetric slope distorts the angles that the angular
losses shape. The third pool is 2x2 (floor mode), as in common PyTorch ports: 28 -> 14 -> 7 -> 3.
The flatten head (not GAP) makes GradCAM and HiResCAM differ.
"""

from __future__ import annotations

from torch import nn

from models.base import FeatureLayer, FeatureNet
from models.registry import register


def _stage(c_in: int, c_out: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 5, padding=2),
        nn.PReLU(),
        nn.Conv2d(c_out, c_out, 5, padding=2),
        nn.PReLU(),
    ]


@register("lenetpp", "LeNet++ of the center-loss / L-Softmax papers (6 conv layers, flatten head)")
class LeNetPP(FeatureNet):
    def __init__(self, in_channels: int, image_size: int, feat_dim: int) -> None:
        super().__init__()
        layers = [
            *_stage(in_channels, 32),
            nn.MaxPool2d(2),
            *_stage(32, 64),
            nn.MaxPool2d(2),
            *_stage(64, 128),
        ]
        side = image_size // 8  # three 2x2 floor-mode pools
        self.trunk = nn.Sequential(*layers, nn.MaxPool2d(2), nn.Flatten())
        self.feature = FeatureLayer(128 * side * side, feat_dim)
        self.cam_layer_name = f"trunk.{len(layers) - 2}"
        self.previous_cam_layer_name = "trunk.7"  # the second stage's last conv, before the second pool
