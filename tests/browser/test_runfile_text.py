"""Text planted in every field of every run file (tests/planted.py) on every page of a real server, in a real
browser: nothing it names is requested from the foreign host, and no link or image from it is on the page.
(tests/test_runfile_text.py checks each element's text in AppTest.)"""

from __future__ import annotations

import pytest

from tests.browser import chromium, requires_chromium, screenshot, streamlit_server, wait_until_idle
from tests.planted import EXPERIMENT, HOST, MARKER, plant

pytestmark = [pytest.mark.browser, requires_chromium]

PAGES = ("features", "angles", "gradcam", "compare", "train", "learn")


def test_no_page_loads_or_links_what_a_run_file_plants(tmp_path):
    runs_dir = plant(tmp_path / "runs")
    foreign: list[str] = []
    with (
        streamlit_server(runs_dir, LOSSLENS_CACHE_DIR=str(tmp_path / "cache")) as url,
        chromium() as browser,
    ):
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        context.on("request", lambda request: foreign.append(request.url) if HOST in request.url else None)
        page = context.new_page()
        for name in PAGES:
            page.goto(f"{url}/{name}?exp={EXPERIMENT}")
            wait_until_idle(page)
            page.get_by_text(MARKER).first.wait_for(timeout=60_000)  # the plant is on the page, as text
            assert page.locator(f"a[href*='{HOST}']").count() == 0, name
            assert page.locator(f"img[src*='{HOST}']").count() == 0, name
            screenshot(page, f"planted-text-{name}")
        assert not foreign
