"""How long work tells its caller how far it is: a ``progress(fraction_done, text)`` callback, the
fraction in [0, 1] and the text saying what is being computed."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, str], None]


def progress_span(progress: Progress | None, start: float, stop: float) -> Progress | None:
    """``progress`` rescaled so that 0..1 reported by a part of the work maps to ``start..stop``."""
    if progress is None:
        return None
    return lambda fraction, text: progress(start + (stop - start) * min(max(fraction, 0.0), 1.0), text)
