"""Real-browser test helpers: the app driver from bench/browser.py, a skip when Chromium is missing,
and screenshots saved where a person can look at them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.browser import CHROMIUM, ROOT, chromium, streamlit_server, wait_until_idle

__all__ = ["choose_losses", "chromium", "requires_chromium", "screenshot", "streamlit_server", "wait_until_idle"]

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


def choose_losses(page, titles: list[str]) -> None:
    """Make ``titles`` (the papers' names on the Train page's loss pills) the chosen losses."""
    pills = page.get_by_role("toolbar", name="Losses")
    pills.wait_for(timeout=60_000)
    for name in [text.strip() for text in pills.get_by_role("button").all_inner_texts()]:
        pill = pills.get_by_role("button", name=name, exact=True)
        if (pill.get_attribute("aria-pressed") == "true") != (name in titles):
            pill.click()
            wait_until_idle(page)
