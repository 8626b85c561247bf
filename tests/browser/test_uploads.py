"""Uploading images on the Grad-CAM page in a real browser: more files than the page explains are named as
ignored, the explained ones appear as rows of the grid, and an image drawn dark-on-light reaches the models
as the light-on-dark images they were trained on, with a line saying so."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from lab.datasets import idx, load_dataset
from lab.datasets.uploads import MAX_UPLOADS
from tests.browser import chromium, requires_chromium, screenshot, streamlit_server, wait_until_idle
from tests.browser.uploading import encoded_image, upload_files

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
        upload_files(page, f"{url}/gradcam?exp=example-digits-2d", files)
        message = f"Only the first {MAX_UPLOADS} of your {MAX_UPLOADS + 1} images are explained"
        page.get_by_text(message).wait_for(timeout=120_000)
        wait_until_idle(page)
        assert page.locator("[data-testid='stException']").count() == 0
        assert page.get_by_text("drawing-0.png").count() >= 1
        screenshot(page, "gradcam-uploads")


@pytest.mark.skipif(not idx.DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's Fashion-MNIST is not installed")
def test_a_trouser_is_explained_the_same_in_either_polarity_and_the_page_says_what_was_inverted(tmp_path):
    fashion = load_dataset("fashion-mnist")
    trouser = fashion.test.images[int(torch.nonzero(fashion.test.labels == 1)[0])].numpy()[0]
    files = [
        {"name": name, "mimeType": "image/png", "buffer": encoded_image(pixels)}
        for name, pixels in (("light-on-dark.png", trouser), ("dark-on-light.png", 255 - trouser))
    ]
    with streamlit_server(tmp_path / "runs") as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        upload_files(page, f"{url}/gradcam?exp=example-fashion-3d", files)
        page.get_by_text("inverted: the image was dark-on-light; the dataset is light-on-dark").wait_for(
            timeout=120_000
        )
        wait_until_idle(page)
        page.get_by_text("not inverted: the image is light-on-dark, like the dataset").wait_for()
        captions = page.locator("[data-testid='stImageCaption']").all_inner_texts()
        predicted = [text for text in captions if text.startswith("predicted")]
        assert len(predicted) == 10  # two images, five losses
        assert predicted[:5] == predicted[5:]  # the same pixels reach every model
        assert sum("Trouser" in text for text in predicted[:5]) >= 4
        screenshot(page, "gradcam-uploads-polarity")
