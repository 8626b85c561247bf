"""The model registry: each model module registers its class by name with :func:`register`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from models.base import FeatureNet


class ModelError(ValueError):
    """Unknown model name or a model that cannot take these inputs."""


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    name: str
    summary: str


_REGISTRY: dict[str, tuple[type[FeatureNet], str]] = {}


def register(name: str, summary: str) -> Callable[[type[FeatureNet]], type[FeatureNet]]:
    """Class decorator: add a model class under ``name`` with a one-line summary."""

    def add(cls: type[FeatureNet]) -> type[FeatureNet]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = (cls, summary)
        return cls

    return add


def names() -> list[str]:
    return list(_REGISTRY)


def available() -> list[ModelInfo]:
    return [ModelInfo(name, summary) for name, (_, summary) in _REGISTRY.items()]


def build(name: str, in_channels: int, image_size: int, feat_dim: int) -> FeatureNet:
    """A freshly initialised model mapping ``in_channels x image_size x image_size`` images to
    ``feat_dim`` features."""
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r} (choose from: {', '.join(_REGISTRY)})")
    return _REGISTRY[name][0](in_channels, image_size, feat_dim)
