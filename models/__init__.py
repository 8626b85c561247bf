"""Models by name: ``models.build(name, in_channels, image_size, feat_dim)``; ``models.available()``."""

from models.base import CAM_LAYERS, FeatureNet
from models.registry import ModelError, ModelInfo, available, build, names, register

from models import small, lenetpp, resnet8  # register themselves, in this order

__all__ = ["CAM_LAYERS", "FeatureNet", "ModelError", "ModelInfo", "available", "build", "names", "register"]
