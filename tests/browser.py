"""Real-browser test helpers: the app driver from bench/browser.py, a skip when Chromium is missing,
and screenshots saved where a person can look at them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.browser import CHROMIUM, ROOT, chromium, streamlit_server, wait_until_idle

__all__ = ["chromium", "requires_chromium", "screenshot", "streamlit_server", "wait_until_idle"]

SCREENSHOTS = Path(os.environ.get("LOSSLENS_SCREENSHOTS", ROOT / "tests" / "screenshots"))

requires_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (CI installs it)",
)


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
