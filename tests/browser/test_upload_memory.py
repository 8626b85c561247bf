"""Uploads do not stay in the server's memory: after the Grad-CAM page has read a browser's uploads (more than
it explains among them), the server's upload store holds none of their bytes, and the page still explains the
first ones on every rerun (it keeps what it read). The server's own figure is Streamlit's /_stcore/metrics."""

from __future__ import annotations

import re
import urllib.request

import numpy as np
import pytest

from lab.datasets.uploads import MAX_UPLOAD_BYTES, MAX_UPLOADS
from tests.browser import chromium, requires_chromium, screenshot, streamlit_server, wait_until_idle
from tests.browser.uploading import encoded_image, upload_files

pytestmark = [pytest.mark.browser, requires_chromium]


def held_upload_bytes(url: str) -> int:
    """Bytes of uploaded files the server holds now, as its metrics report them."""
    with urllib.request.urlopen(f"{url}/_stcore/metrics", timeout=10) as response:
        text = response.read().decode()
    found = re.findall(r'cache_memory_bytes\{cache_type="UploadedFileManager"[^}]*\} (\d+)', text)
    return sum(map(int, found))


def test_the_server_lets_uploads_go_once_read(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (600, 600, 3), dtype=np.uint8)
    files = [
        {"name": f"photo-{i}.png", "mimeType": "image/png", "buffer": encoded_image(np.roll(noise, i, axis=0))}
        for i in range(MAX_UPLOADS + 3)
    ]
    sent = sum(len(f["buffer"]) for f in files)
    assert sent > 10 * 1024 * 1024 and all(len(f["buffer"]) < MAX_UPLOAD_BYTES for f in files)
    with streamlit_server(tmp_path / "runs") as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        upload_files(page, f"{url}/gradcam?exp=example-digits-2d", files)
        page.get_by_text(f"Only the first {MAX_UPLOADS} of your {len(files)} images are explained").wait_for(
            timeout=120_000
        )
        wait_until_idle(page)
        assert held_upload_bytes(url) == 0, f"of {sent:,} bytes sent"
        page.get_by_text("invert every image", exact=True).click()  # a rerun: the images are still there
        wait_until_idle(page)
        page.get_by_text("photo-0.png: inverted").first.wait_for(timeout=60_000)
        assert page.locator("[data-testid='stException']").count() == 0
        assert held_upload_bytes(url) == 0
        screenshot(page, "gradcam-uploads-let-go")
