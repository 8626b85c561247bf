"""Uploading images through the page's file uploader, for the upload tests."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from tests.browser import wait_until_idle


def upload_files(page, address: str, files: list[dict]) -> None:
    """Open the Grad-CAM page at ``address``, pick "upload" as the images and hand the uploader ``files``."""
    page.goto(address)
    wait_until_idle(page)
    page.locator("[data-testid='stSelectbox']").filter(has_text="Images").first.click()
    page.get_by_role("option", name="upload").click()
    wait_until_idle(page)
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(files)


def encoded_image(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()
