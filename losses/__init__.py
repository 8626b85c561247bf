"""Loss heads by name. ``losses.build(name, feat_dim, n_classes, **hparams)`` makes one;
``losses.available()`` lists them with their summaries and defaults.

One module per loss; each registers itself with :func:`losses.registry.register` when imported
below, so adding a loss means adding a module, its table in ``losses/about.toml`` (what the app
shows about it) and one import line.
"""

from losses.base import Expected, HparamError, HparamSpec, LossHead, read_number
from losses.registry import LossInfo, available, build, get, info, make_params, names, register, warnings_for

from losses import softmax  # noqa: E402,F401  (registers itself)
from losses import lsoftmax  # noqa: E402,F401  (registers itself)
from losses import amc  # noqa: E402,F401  (registers itself)
from losses import opl  # noqa: E402,F401  (registers itself)
from losses import lmd  # noqa: E402,F401  (registers itself)
from losses import center  # noqa: E402,F401  (registers itself)
from losses import sphereface  # noqa: E402,F401  (registers itself)
from losses import cosface  # noqa: E402,F401  (registers itself)
from losses import arcface  # noqa: E402,F401  (registers itself)

__all__ = [
    "Expected",
    "HparamError",
    "HparamSpec",
    "LossHead",
    "LossInfo",
    "available",
    "build",
    "get",
    "info",
    "make_params",
    "names",
    "read_number",
    "register",
    "warnings_for",
]
