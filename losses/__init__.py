"""Loss heads by name. ``losses.build(name, feat_dim, n_classes, **hparams)`` makes one;
``losses.available()`` lists them with their summaries and defaults.

One module per loss; each registers itself with :func:`losses.registry.register` when imported
below, so adding a loss means adding a module, its table in ``losses/about.toml`` (what the app
shows about it) and one import line. A loss outside this package (a user's own file or installed
package) is a plug-in: :mod:`losses.plugins` imports it and registers it through the same
:func:`register`. pytorch-metric-learning's classification losses are the ``pml:`` family
(:mod:`losses.pml`), registered when first named.
"""

from losses.base import Expected, HparamError, HparamSpec, LossHead, hparam, normalize, read_number
from losses.registry import (
    LossInfo,
    available,
    build,
    get,
    info,
    make_params,
    names,
    register,
    source,
    warnings_for,
)

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
    "hparam",
    "info",
    "make_params",
    "names",
    "normalize",
    "read_number",
    "register",
    "source",
    "warnings_for",
]
