"""The class activation map methods LossLens offers: the name users see, and pytorch-grad-cam's class.

Declared apart from :mod:`lab.interpret.gradcam` so that what only names the methods (the command line's ``--help``
and argument checks) does not import pytorch-grad-cam, torchvision, OpenCV and matplotlib: that import
took several seconds of every ``python -m lab`` command, ``train`` included.
"""

from __future__ import annotations

CAM_METHOD_CLASSES: dict[str, str] = {
    "GradCAM": "GradCAM",
    "GradCAM++": "GradCAMPlusPlus",
    "HiResCAM": "HiResCAM",
    "XGradCAM": "XGradCAM",
    "LayerCAM": "LayerCAM",
    "EigenCAM": "EigenCAM",
    "ScoreCAM": "ScoreCAM",
}
