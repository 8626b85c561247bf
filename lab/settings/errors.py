"""The error every settings check raises."""

from __future__ import annotations


class ConfigError(ValueError):
    """A run setting is missing, of the wrong type or out of range; the message names the field."""
