"""``losslens``: start the app from wherever LossLens is installed.

Streamlit reads its settings from ``.streamlit/config.toml`` in the working folder or beside the main
script. A checkout has that file beside ``app.py``; an installed wheel puts it under
``<prefix>/share/losslens/.streamlit``, so this launcher reads the file from wherever it is and hands
every setting to ``streamlit run`` as a flag. Runs and downloaded data go to the folder the command
is started in (``LOSSLENS_RUNS_DIR``, ``LOSSLENS_DATA_DIR``), as with ``streamlit run app.py``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

APP = Path(__file__).resolve().parents[2] / "app.py"  # a top-level module beside lab/, checked out or installed
CONFIG_PLACES = (
    APP.parent / ".streamlit" / "config.toml",
    Path(sysconfig.get_path("data")) / "share" / "losslens" / ".streamlit" / "config.toml",
)


def config_file() -> Path | None:
    """The app's Streamlit settings file: beside app.py in a checkout, else where the wheel put it."""
    return next((path for path in CONFIG_PLACES if path.is_file()), None)


def config_flags(path: Path | None) -> list[str]:
    """``[section] key = value`` pairs of a Streamlit config file as ``--section.key=value`` flags."""
    if path is None:
        return []
    flags = []
    for section, options in tomllib.loads(path.read_text()).items():
        for key, value in options.items():
            flags.append(f"--{section}.{key}={_flag_value(value)}")
    return flags


def _flag_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def command(extra: Sequence[str] = ()) -> list[str]:
    """The ``streamlit run`` command line; ``extra`` flags (e.g. ``--server.port=8600``) win."""
    return [sys.executable, "-m", "streamlit", "run", str(APP), *config_flags(config_file()), *extra]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    cmd = command(args)
    logger.info("starting %s", " ".join(cmd))
    try:
        return subprocess.call(cmd, env=os.environ.copy())
    except KeyboardInterrupt:
        return 130
