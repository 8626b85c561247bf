"""Upload checks: accepted types by content, size and pixel limits before decoding, dataset-shaped output."""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from lab.datasets import idx, uploads
from lab.datasets.registry import load_dataset
from lab.datasets.uploads import UploadError, check_upload, load_upload


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _square_on_black(size: int = 64, mode: str = "L") -> Image.Image:
    """A bright square in the middle of a black image."""
    image = Image.new(mode, (size, size), 0)
    image.paste(255 if mode == "L" else (255, 255, 255), (size // 4, size // 4, 3 * size // 4, 3 * size // 4))
    return image


def _png_claiming(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose IHDR (with a correct CRC) claims ``width`` x ``height`` pixels."""
    data = bytearray(_encode(Image.new("L", (1, 1)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if any image's pixels get decoded."""

    def refuse(self):
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF"])
@pytest.mark.parametrize(("channels", "size"), [(1, 8), (1, 28), (3, 32)])
def test_accepted_types_are_converted_and_resized_to_the_dataset(fmt, channels, size):
    data = _encode(_square_on_black(64, "RGB"), fmt)
    tensor = load_upload(data, f"upload.{fmt.lower()}", channels=channels, image_size=size)
    assert tensor.shape == (channels, size, size)
    assert tensor.dtype == torch.uint8
    middle, corner = tensor[:, size // 2, size // 2], tensor[:, 0, 0]
    assert (middle > 200).all() and (corner < 50).all()


def test_type_is_sniffed_from_the_content_not_the_name():
    png = _encode(_square_on_black(), "PNG")
    assert load_upload(png, "drawing.jpg", channels=1, image_size=8).shape == (1, 8, 8)
    assert check_upload(png, "drawing.txt") == ("PNG", 64, 64)


def test_color_becomes_luma_and_transparency_becomes_white():
    red = _encode(Image.new("RGB", (16, 16), (255, 0, 0)), "PNG")
    assert load_upload(red, "red.png", channels=1, image_size=8).unique().tolist() == [76]
    clear = _encode(Image.new("RGBA", (16, 16), (0, 0, 0, 0)), "PNG")
    assert load_upload(clear, "clear.png", channels=3, image_size=8).unique().tolist() == [255]


def test_invert_turns_dark_on_light_into_light_on_dark():
    data = _encode(_square_on_black(), "PNG")
    plain = load_upload(data, "a.png", channels=1, image_size=8)
    inverted, orientation = uploads.orient(plain, uploads.LIGHT_ON_DARK, invert=True)
    assert (inverted.int() == 255 - plain.int()).all()
    assert orientation.note() == "inverted, as chosen (the image is light-on-dark; the dataset is light-on-dark)"


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    data = _encode(Image.fromarray(ramp), "PNG")
    tensor = load_upload(data, "ramp.png", channels=1, image_size=8)
    np.testing.assert_allclose(tensor[0].numpy(), np.round(ramp / 257.0), atol=1)


@pytest.mark.parametrize("name", ["photo.tiff", "photo.png"])
def test_tiff_is_refused_by_content_with_what_to_upload_instead(name):
    data = _encode(_square_on_black(), "TIFF")
    with pytest.raises(UploadError, match=rf"{name}: TIFF is not accepted; upload a PNG, JPEG, BMP or GIF"):
        load_upload(data, name, channels=1, image_size=8)


def test_a_text_file_renamed_png_is_refused():
    with pytest.raises(UploadError, match=r"notes\.png: the contents are not a PNG, JPEG, BMP or GIF image"):
        load_upload(b"just some notes, not an image\n" * 10, "notes.png", channels=1, image_size=8)


def test_an_empty_file_is_refused():
    with pytest.raises(UploadError, match="empty"):
        load_upload(b"", "empty.png", channels=1, image_size=8)


def test_an_oversized_file_is_refused_before_decoding(no_decoding):
    data = _encode(Image.new("L", (8, 8)), "PNG") + b"\0" * uploads.MAX_UPLOAD_BYTES
    with pytest.raises(UploadError, match=r"big\.png: the file is 5\.0 MB but the limit is 5\.0 MB"):
        load_upload(data, "big.png", channels=1, image_size=8)


def test_an_oversized_stream_is_read_only_just_past_the_limit(no_decoding):
    stream = io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\0" * (2 * uploads.MAX_UPLOAD_BYTES))
    with pytest.raises(UploadError, match=r"larger but the limit is 5\.0 MB"):
        load_upload(stream, "big.png", channels=1, image_size=8)
    assert stream.tell() == uploads.MAX_UPLOAD_BYTES + 1


@pytest.mark.parametrize(("width", "height"), [(30000, 30000), (5000, 5000), (1, 16_777_216), (16_777_216, 1)])
def test_a_header_claiming_too_large_a_side_is_refused_before_decoding(no_decoding, width, height):
    data = _png_claiming(width, height)
    assert len(data) < 100
    with pytest.raises(UploadError, match=r"bomb\.png: the image is too large to decode .*limit is 1024 pixels a side"):
        load_upload(data, "bomb.png", channels=1, image_size=8)


def test_a_real_thin_strip_over_the_side_limit_is_refused_before_decoding():
    data = _encode(Image.new("L", (1, 1_000_000)), "PNG")
    assert len(data) < uploads.MAX_UPLOAD_BYTES // 50  # tiny on disk, a million pixels in one column
    with pytest.raises(UploadError, match=r"1 x 1000000 pixels"):
        check_upload(data, "strip.png")


def test_an_image_at_the_side_limit_is_accepted():
    data = _encode(Image.new("L", (uploads.MAX_UPLOAD_SIDE, 16)), "PNG")
    assert load_upload(data, "wide.png", channels=1, image_size=8).shape == (1, 8, 8)


def test_damaged_headers_and_truncated_pixels_get_their_own_messages():
    with pytest.raises(UploadError, match="header is damaged"):
        load_upload(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "broken.png", channels=1, image_size=8)
    whole = _encode(Image.effect_noise((64, 64), 50), "PNG")
    with pytest.raises(UploadError, match="could not be decoded"):
        load_upload(whole[: len(whole) // 2], "cut.png", channels=1, image_size=8)


def test_limits_text_names_the_limits():
    text = uploads.limits_text()
    assert "5.0 MB" in text and "1024 x 1024 pixels" in text and "GIF" in text and "12 images" in text


def test_an_upload_is_decoded_once_and_its_file_let_go(monkeypatch, tmp_path):
    """The Grad-CAM page reads each upload once (its reruns and a polarity change reuse what it read) and
    drops the file from the server's upload store; more files than it explains are dropped unread."""
    from tests.apptest import app_reads, open_page
    from ui import uploads as page_uploads

    decoded, let_go = [], []
    real = page_uploads.load_upload
    monkeypatch.setattr(
        page_uploads, "load_upload", lambda data, name, **shape: decoded.append(name) or real(data, name, **shape)
    )
    monkeypatch.setattr(page_uploads, "_let_go", let_go.append)
    files = [
        (f"d{i}.png", _encode(Image.new("L", (20, 20), 10 * i), "PNG"), "image/png")
        for i in range(uploads.MAX_UPLOADS + 1)
    ]
    with app_reads(tmp_path):
        app = open_page("pages/gradcam.py", experiment="example-digits-2d")
        app.selectbox(key="cam_images").set_value("upload").run()
        app.file_uploader[0].set_value(files).run()
        app.run()
        app.button_group(key="cam_polarity").set_value(page_uploads.INVERT).run()
    assert not app.exception, [e.value for e in app.exception]
    assert decoded == [name for name, _, _ in files[: uploads.MAX_UPLOADS]], "each explained upload read once"
    assert len(set(let_go)) == uploads.MAX_UPLOADS + 1, "every file let go, the ignored one unread"
    assert len(app.session_state[page_uploads.KEPT]) == uploads.MAX_UPLOADS


# ---------------------------------------------------------------- polarity


@pytest.fixture(scope="module")
def fashion():
    if not idx.DEBIAN_FASHION_MNIST.is_dir() and not os.environ.get("CI"):
        pytest.skip("Debian package dataset-fashion-mnist not installed (CI installs it)")
    return load_dataset("fashion-mnist")


def _upload_as_drawn(pixels: np.ndarray) -> bytes:
    return _encode(Image.fromarray(pixels[0]), "PNG")


def test_fashion_mnist_is_light_on_dark_and_its_images_arrive_so_in_either_polarity(fashion):
    images = fashion.test.images.numpy()
    dataset = uploads.dataset_polarity(images)
    assert dataset == uploads.LIGHT_ON_DARK
    trousers = np.flatnonzero(fashion.test.labels.numpy() == fashion.class_names.index("Trouser"))[:20]
    for index in trousers:
        original = images[index]
        for drawn, was in ((original, uploads.LIGHT_ON_DARK), (255 - original, uploads.DARK_ON_LIGHT)):
            decoded = load_upload(_upload_as_drawn(drawn), "trouser.png", channels=1, image_size=28)
            assert np.array_equal(decoded.numpy(), drawn)  # decoding alone keeps the image as drawn
            pixels, orientation = uploads.orient(decoded, dataset)
            assert np.array_equal(pixels.numpy(), original), f"test image {index} drawn {was}"
            assert orientation.image == was and orientation.inverted == (was == uploads.DARK_ON_LIGHT)
    inverted = uploads.orient(torch.from_numpy(255 - images[trousers[0]]), dataset)[1]
    assert inverted.note() == "inverted: the image was dark-on-light; the dataset is light-on-dark"
    kept = uploads.orient(torch.from_numpy(images[trousers[0]]), dataset)[1]
    assert kept.note() == "not inverted: the image is light-on-dark, like the dataset"


def test_nearly_every_fashion_mnist_image_is_read_as_light_on_dark_and_its_inverse_as_dark_on_light(fashion):
    images = fashion.test.images.numpy()
    found = [uploads.polarity(image) for image in images[::10]]
    flipped = [uploads.polarity(255 - image) for image in images[::10]]
    assert found.count(uploads.LIGHT_ON_DARK) >= 0.995 * len(found) and uploads.DARK_ON_LIGHT not in found
    assert flipped.count(uploads.DARK_ON_LIGHT) >= 0.995 * len(flipped) and uploads.LIGHT_ON_DARK not in flipped


def test_a_dataset_of_both_polarities_has_none_and_its_uploads_are_kept(fashion):
    images = fashion.test.images.numpy()[:1000].copy()
    images[::2] = 255 - images[::2]  # half dark-on-light, as photos of objects darker or lighter than their scene
    assert uploads.dataset_polarity(images) is None
    rgb = np.repeat(images, 3, axis=1)  # the same for colour images
    assert uploads.dataset_polarity(rgb) is None
    pixels, orientation = uploads.orient(torch.from_numpy(images[0]), None)
    assert not orientation.inverted and np.array_equal(pixels.numpy(), images[0])
    assert orientation.note() == "not inverted: the image is dark-on-light; the dataset has no single polarity"


def test_a_flat_image_has_no_polarity_and_is_kept():
    grey = torch.full((1, 28, 28), 128, dtype=torch.uint8)
    grey[0, 10:18, 10:18] = 140  # 12 grey levels of contrast: not enough to tell
    assert uploads.polarity(grey.numpy()) is None
    pixels, orientation = uploads.orient(grey, uploads.LIGHT_ON_DARK)
    assert not orientation.inverted and torch.equal(pixels, grey)
    assert orientation.note() == "not inverted: the image's polarity is unclear; the dataset is light-on-dark"


def test_the_digits_are_light_on_dark_and_an_upload_on_white_is_inverted():
    digits = load_dataset("digits")
    assert uploads.dataset_polarity(digits.test.images.numpy()) == uploads.LIGHT_ON_DARK
    drawing = Image.new("L", (64, 64), 255)
    drawing.paste(0, (28, 8, 36, 56))  # a dark "1" on white paper
    pixels, orientation = uploads.orient(
        load_upload(_encode(drawing, "PNG"), "one.png", channels=1, image_size=8), "light-on-dark"
    )
    assert orientation.inverted and pixels[0, 0, 0] == 0 and pixels[0, 4, 3:5].min() > 100  # the stroke is light
