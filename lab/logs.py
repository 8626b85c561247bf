"""Where the core's log records go when LossLens runs as a program (the CLI, the app's server).

Library code only calls ``logging.getLogger(__name__)``; the programs call :func:`configure` once.
``LOSSLENS_LOG_LEVEL`` (default ``INFO`` for the app's server log, ``WARNING`` for the CLI, whose
stderr also carries the progress bar) picks how much is written.
"""

from __future__ import annotations

import logging
import os

PROJECT_LOGGERS = ("lab", "losses", "models", "ui")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(default_level: str = "INFO") -> None:
    """Send the project's log records to stderr once per process (repeated calls change nothing).

    The loggers keep propagating, so a host that listens at the root (pytest's capture, an embedding
    program) still sees every record; the root has no handler of its own in our programs, so nothing
    is printed twice.
    """
    level = os.environ.get("LOSSLENS_LOG_LEVEL", default_level).upper()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    for name in PROJECT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(getattr(h, "losslens", False) for h in logger.handlers):
            handler.losslens = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
        logger.setLevel(level if level in logging.getLevelNamesMapping() else default_level)
