"""Choosing the compute device: ``auto`` takes CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import torch

from lab.settings.errors import ConfigError


def available_devices() -> list[str]:
    """Device names usable on this machine, best first (always ends with ``cpu``)."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return [*found, "cpu"]


def resolve_device(name: str) -> torch.device:
    """The torch device for a config's ``device`` field; a device this machine lacks is an error."""
    usable = available_devices()
    if name == "auto":
        return torch.device(usable[0])
    if name not in usable:
        raise ConfigError(f"device: {name!r} is not available on this machine (available: auto, {', '.join(usable)})")
    return torch.device(name)
