"""Uploading images on the Grad-CAM page in a real browser: more files than the page explains are named as
ignored, and the explained ones appear as rows of the grid."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from lab.uploads import MAX_UPLOADS
from tests.browser import chromium, requires_chromium, screenshot, streamlit_server, wait_until_idle

pytestmark = [pytest.mark.browser, requires_chromium]


def _png(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (20, 20), shade).save(buffer, "PNG")
    return buffer.getvalue()


def test_uploads_beyond_the_limit_are_named_as_ignored(tmp_path):
    files = [
        {"name": f"drawing-{i}.png", "mimeType": "image/png", "buffer": _png(10 * i)} for i in range(MAX_UPLOADS + 1)
    ]
    with streamlit_server(tmp_path / "runs") as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(f"{url}/gradcam?exp=example-digits-2d")
        wait_until_idle(page)
        page.locator("[data-testid='stSelectbox']").filter(has_text="Images").first.click()
        page.get_by_role("option", name="upload").click()
        wait_until_idle(page)
        page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(files)
        message = f"Only the first {MAX_UPLOADS} of your {MAX_UPLOADS + 1} images are explained"
        page.get_by_text(message).wait_for(timeout=120_000)
        wait_until_idle(page)
        assert page.locator("[data-testid='stException']").count() == 0
        assert page.get_by_text("drawing-0.png").count() >= 1
        screenshot(page, "gradcam-uploads")
