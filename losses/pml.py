"""pytorch-metric-learning's classification losses as LossHeads: one adapter for every loss of the library
that owns a class-weight matrix, named ``pml:CLASS`` (``pml:ArcFaceLoss``, ``pml:SubCenterArcFaceLoss``).

    loss  = the library's CLASS(num_classes=K, embedding_size=D, **settings)(features, labels)
    logits(f) = the library's CLASS.get_logits(f): its own logits without the margin (negated where it
                returns a distance, and times the scale its cross-entropy multiplies them by)

The library's module is the head's ``loss`` submodule, run as it is: its weights (``W``, ``proxies`` or
``fc``), initialisation, margins and reduction are the library's. The hyperparameters are the keyword
arguments of its constructors (``inspect.signature``, walking the class and its library bases) with the
library's defaults; :data:`SETTINGS` adds what each means, its unit and its allowed range, since a
signature carries none. ArcFace's and SubCenterArcFace's margins are in degrees as the library takes
them (LossLens's ``arcface`` takes radians); CosFace's in cosine units.

Class directions (K x D) are the library's class weights, of unit length where its distance normalises
them; a loss with several centers per class (SubCenterArcFace's ``sub_centers``, SoftTriple's
``centers_per_class``; the library lays them out as ``view(K, n)`` of its columns) draws each class's
dominant center, the one most of the class's training samples were closest to (counted in the buffer
``hits``, so it is saved with the run), as the SubCenterArcFace paper picks it.

The library is optional: without it, naming a ``pml:`` loss says how to install it. Measurements of the
adapter against LossLens's own losses: bench/RESULTS.md.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import threading
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from losses import registry
from losses.base import HparamError, LossHead, hparam

PREFIX = "pml"
LIBRARY = "pytorch-metric-learning"
MODULE = "pytorch_metric_learning"
INSTALL = f"pip install {LIBRARY}"


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where a library loss keeps its class weights: the attribute, whether classes are its columns (D x K,
    the library's ``W``) or rows (K x D, ``proxies``), the hyperparameter giving several centers per class,
    whether its distance normalises them, and the attribute its cross-entropy multiplies ``get_logits`` by."""

    weights: str
    by_column: bool
    per_class: str = ""
    unit: bool = True
    logit_scale: str = ""


LAYOUTS = {
    "ArcFaceLoss": Layout("W", by_column=True),
    "CosFaceLoss": Layout("W", by_column=True),
    "SphereFaceLoss": Layout("W", by_column=True),
    "LargeMarginSoftmaxLoss": Layout("W", by_column=True, unit=False),  # |W_j| scales its logits
    "SubCenterArcFaceLoss": Layout("W", by_column=True, per_class="sub_centers"),
    "NormalizedSoftmaxLoss": Layout("W", by_column=True),
    "ProxyNCALoss": Layout("proxies", by_column=False, logit_scale="softmax_scale"),
    "ProxyAnchorLoss": Layout("proxies", by_column=False),
    "SoftTripleLoss": Layout("fc", by_column=True, per_class="centers_per_class", logit_scale="la"),
}
CLASSES = tuple(LAYOUTS)


@dataclasses.dataclass(frozen=True)
class Setting:
    """What a constructor argument means (opening with the paper's symbol), its kind and allowed range."""

    help: str
    kind: type = float
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True


_ANGULAR_MARGIN = Setting("m: added to the target angle, in degrees (LossLens's arcface: radians)", low=0.0, high=90.0)
_MULTIPLIED_MARGIN = Setting("m: the target angle is multiplied by m (1: no margin)", kind=int, low=1, high=6)
SETTINGS: dict[str, Setting] = {
    "scale": Setting("s: every logit is multiplied by s", low=0.0, high=1024.0, low_inclusive=False),
    "temperature": Setting("T: the cosines are divided by T", low=0.0, high=100.0, low_inclusive=False),
    "softmax_scale": Setting(
        "s: the negative squared distances to the proxies are multiplied by s",
        low=0.0,
        high=1024.0,
        low_inclusive=False,
    ),
    "alpha": Setting("alpha: scale of the cosines to the proxies", low=0.0, high=1024.0, low_inclusive=False),
    "sub_centers": Setting("K: sub-centers per class; a class's cosine is its closest one's", kind=int, low=1, high=20),
    "centers_per_class": Setting("K: centers per class", kind=int, low=1, high=50),
    "la": Setting("lambda: scale of the similarities in the cross-entropy", low=0.0, high=1024.0, low_inclusive=False),
    "gamma": Setting(
        "gamma: temperature of the softmax over a class's centers", low=0.0, high=100.0, low_inclusive=False
    ),
    "margin": Setting("delta: the margin on the similarity", low=0.0, high=2.0),
}
MARGINS: dict[str, Setting] = {  # what ``margin`` is differs from loss to loss
    "ArcFaceLoss": _ANGULAR_MARGIN,
    "SubCenterArcFaceLoss": _ANGULAR_MARGIN,
    "CosFaceLoss": Setting("m: subtracted from the target cosine (cosine units)", low=0.0, high=1.0),
    "LargeMarginSoftmaxLoss": _MULTIPLIED_MARGIN,
    "SphereFaceLoss": _MULTIPLIED_MARGIN,
}
TAKEN = ("num_classes", "embedding_size")  # the adapter passes these
SCALARS = (bool, int, float, str)

_lock = threading.Lock()


def installed() -> bool:
    """Whether pytorch-metric-learning can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(MODULE) is not None
    except (ImportError, ValueError):
        return False


def how_to_add() -> str:
    """The sentence that says how to get these losses."""
    return f"pytorch-metric-learning's losses ({', '.join(CLASSES)}) need it installed: {INSTALL}"


def library() -> Any:
    """The library's ``losses`` module; :class:`HparamError` saying how to install it when it is missing."""
    try:
        return importlib.import_module(f"{MODULE}.losses")
    except ImportError as err:
        missing = getattr(err, "name", None) or MODULE
        raise HparamError(f"{how_to_add()} (import failed: no module {missing!r}), then start LossLens again") from None


def register_available() -> str:
    """Register the adapter's losses when the library is installed; else the sentence saying how to add them."""
    if not installed():
        return how_to_add()
    register_all()
    return ""


def require(name: str) -> None:
    """Register the adapter's losses, then check that ``name`` (``pml:CLASS``) is one of them."""
    register_all()
    if name not in registry.names():
        member = name.partition(":")[2]
        raise HparamError(
            f"unknown loss {name!r}: the {PREFIX}: adapter takes pytorch-metric-learning's losses that own a "
            f"class-weight matrix: {', '.join(f'{PREFIX}:{each}' for each in CLASSES)}"
            + (f" ({member} has none)" if hasattr(library(), member) else "")
        )


def register_all() -> list[str]:
    """Register ``pml:CLASS`` for every class of :data:`CLASSES` (once); their names."""
    module = library()
    names = [f"{PREFIX}:{each}" for each in CLASSES]
    with _lock:
        for each, name in zip(CLASSES, names, strict=True):
            if name not in registry.names():
                registry.register(_head_class(each, getattr(module, each)))
    return names


def signature_settings(library_class: type) -> dict[str, Any]:
    """The keyword arguments of ``library_class``'s constructor with scalar defaults, walking its library bases
    while each passes ``**kwargs`` on (the first default found is the one used), less those the adapter
    passes; in the order the constructors declare them."""
    found: dict[str, Any] = {}
    for cls in inspect.getmro(library_class):
        if not cls.__module__.startswith(f"{MODULE}.losses.") or cls.__module__.endswith(
            ("mixins", "base_metric_loss_function")
        ):
            continue
        parameters = inspect.signature(cls.__init__).parameters
        for parameter in parameters.values():
            default = parameter.default
            if parameter.name in TAKEN or parameter.name == "self" or type(default) not in SCALARS:
                continue
            found.setdefault(parameter.name, default)
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            break
    return found


def params_class(library_class: type) -> type:
    """The frozen dataclass of ``library_class``'s hyperparameters, each declared with ``hparam()`` from its
    signature's default and :data:`SETTINGS` (an argument :data:`SETTINGS` does not know keeps its default's
    kind and says where it is documented)."""
    fields = []
    for name, default in signature_settings(library_class).items():
        declared = MARGINS.get(library_class.__name__) if name == "margin" else None
        declared = declared or SETTINGS.get(name)
        if declared is None or type(default) is bool or isinstance(default, str):
            declared = Setting(
                f"{name}: the library's argument (see pytorch-metric-learning's docs)", kind=type(default)
            )
        value = declared.kind(default)
        field = hparam(value, declared.help, low=declared.low, high=declared.high, low_inclusive=declared.low_inclusive)
        fields.append((name, declared.kind, field))
    params = dataclasses.make_dataclass(
        f"{library_class.__name__}Params",
        fields,
        frozen=True,
        namespace={"__doc__": f"The settings of pytorch-metric-learning's {library_class.__name__}."},
    )
    params.__module__ = __name__
    return params


def _head_class(name: str, library_class: type) -> type[PmlHead]:
    return type(
        f"Pml{name}",
        (PmlHead,),
        {
            "__module__": __name__,
            "__doc__": f"pytorch-metric-learning's {name} as a LossHead.",
            "name": f"{PREFIX}:{name}",
            "Params": params_class(library_class),
            "library_class": library_class,
            "layout": LAYOUTS[name],
        },
    )


class PmlHead(LossHead):
    """A library loss as a head: ``loss`` is the library's module (it owns the class weights, so the head has
    no ``classifier``); the forward is its loss and :meth:`logits` its ``get_logits``."""

    bias = False
    library_class: ClassVar[type]
    layout: ClassVar[Layout]

    def __init__(self, feat_dim: int, n_classes: int, params: Any) -> None:
        super().__init__(feat_dim, n_classes, params)
        del self.classifier  # the library's module owns the class weights
        settings = dataclasses.asdict(params)
        self.loss = self.library_class(num_classes=n_classes, embedding_size=feat_dim, **settings)
        self.per_class = int(settings[self.layout.per_class]) if self.layout.per_class else 1
        if self.layout.per_class:
            self.register_buffer("hits", torch.zeros(n_classes, self.per_class, dtype=torch.long))

    def centers(self) -> torch.Tensor:
        """The library's class weights as rows (K x D, or K * n x D with n centers per class)."""
        weights = getattr(self.loss, self.layout.weights)
        return weights.T if self.layout.by_column else weights

    def cast(self, features: torch.Tensor) -> torch.Tensor:
        return features.to(getattr(self.loss, self.layout.weights).dtype)

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        features = self.cast(features)
        if self.training and self.layout.per_class:
            self._count_hits(features.detach(), labels)
        total = self.loss(features, labels)
        return total, {"loss": total}

    def _count_hits(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Count, for each sample, which center of its own class it is closest to (the library's similarity)."""
        with torch.no_grad():
            similarity = self.loss.distance(features, self.centers())
            if not self.loss.distance.is_inverted:
                similarity = -similarity
            own = similarity.view(len(labels), self.n_classes, self.per_class)[torch.arange(len(labels)), labels]
            self.hits.index_put_((labels, own.argmax(dim=1)), torch.ones_like(labels), accumulate=True)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """The library's ``get_logits``: its logits without any margin; negated when it returns a distance
        (larger means farther), and times the scale its cross-entropy applies outside it."""
        logits = self.loss.get_logits(self.cast(features))
        if not self.loss.distance.is_inverted:
            logits = -logits
        if self.layout.logit_scale:
            logits = logits * getattr(self.loss, self.layout.logit_scale)
        return logits

    def class_directions(self) -> torch.Tensor:
        """Each class's weight vector (its dominant center when it has several), of unit length when the
        library's distance normalises it."""
        rows = self.centers().detach()
        if self.layout.per_class:
            grouped = rows.reshape(self.n_classes, self.per_class, -1)
            rows = grouped[torch.arange(self.n_classes), self.hits.argmax(dim=1)]
        return F.normalize(rows, dim=1) if self.layout.unit else rows
