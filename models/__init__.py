"""Models by name: ``models.build(name, in_channels, image_size, feat_dim)``; ``models.available()``."""

from models.base import FeatureNet
from models.registry import ModelError, ModelInfo, available, build, names, register

from models import lenetpp, resnet8, small  # noqa: E402,F401  (register themselves)

__all__ = ["FeatureNet", "ModelError", "ModelInfo", "available", "build", "names", "register"]
