"""Check and decode a user's uploaded image into a dataset-shaped uint8 tensor (C x H x W).

Everything that can be checked without decoding is checked first, in this order:

1. **File size**: at most :data:`MAX_UPLOAD_BYTES` (a stream is read only that far);
2. **Type by content**: the magic bytes must be PNG, JPEG, BMP or GIF, whatever the file name
   says; known other types (TIFF, WebP, HEIC, PDF, SVG, ...) are named in the refusal;
3. **Size from the header**: Pillow's ``Image.open`` reads only the header, and an image with a side
   over :data:`MAX_UPLOAD_SIDE` pixels is refused before any
   pixel is decoded (a decompression bomb: a few kilobytes that would expand to gigabytes; a 1 x 16.7
   million strip passes a pixel count alone but costs about 1 GB to decode and resize). The models
   see 8x8 to 32x32 pixels, so a megapixel is plenty. Pillow's own guard (``Image.MAX_IMAGE_PIXELS``,
   which refuses at twice its value) is left at its default; ours is lower and is checked first
   where Pillow's does not already refuse.

Then the image is decoded (first frame of a GIF; JPEG via draft mode when it is much larger than
needed), turned upright by its EXIF orientation, composited over white where it is transparent,
16-bit greyscale scaled to 8 bits, converted to the dataset's channel count (L or RGB), centre-
cropped to a square and resized to the dataset's image size (area averaging when shrinking, as
the 8x8 digits and MNIST were made; bicubic when enlarging).

Polarity comes last (:func:`orient`): the digits, MNIST and Fashion-MNIST are light objects on a dark
background, while a drawing or photo is often dark on light. Where the border lies between the image's
darkest and brightest pixel tells the two apart (:func:`polarity`): a border near the dark end is a dark
background. The dataset's own images decide its polarity the same way (:func:`dataset_polarity`; CIFAR's
photos have none), and an upload of the other polarity is inverted, unless the user says otherwise.

Every refusal is an :class:`UploadError` whose message names the file and says what to change.
"""

from __future__ import annotations

import dataclasses
import io
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_UPLOAD_SIDE = 1024
MAX_UPLOADS = 12  # images explained at once; more are ignored, and the page says so
ACCEPTED_FORMATS = ("PNG", "JPEG", "BMP", "GIF")
ACCEPTED_TEXT = "a PNG, JPEG, BMP or GIF"

_ACCEPTED_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
)
_REFUSED_MAGIC = (
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
    (b"8BPS", "Photoshop (PSD)"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
)
_HEIF_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF"}
_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L")

LIGHT_ON_DARK, DARK_ON_LIGHT = "light-on-dark", "dark-on-light"
BORDER_SHARE = 0.1  # the border is the outer tenth of each side, at least one pixel
DARK_BORDER, LIGHT_BORDER = 0.4, 0.6  # border position between darkest and brightest: dark below, light above
FLAT_SPAN = 32  # grey levels: an image whose darkest and brightest pixels are closer has no polarity
DATASET_AGREEMENT = 0.9  # share of a dataset's images that must share a polarity for it to have one
DATASET_SAMPLE = 1000  # images measured for that share: within a few percent, and a few megabytes for CIFAR


class UploadError(ValueError):
    """An upload was refused; the message names the file and says what to upload instead."""


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def limits_text() -> str:
    """The upload limits in one line, for the UI."""
    return (
        f"{', '.join(ACCEPTED_FORMATS[:-1])} or {ACCEPTED_FORMATS[-1]}; at most {MAX_UPLOADS} images of "
        f"{_megabytes(MAX_UPLOAD_BYTES)} and {MAX_UPLOAD_SIDE} x {MAX_UPLOAD_SIDE} pixels each"
    )


def sniff_format(head: bytes) -> str | None:
    """The accepted format (``"PNG"``, ``"JPEG"``, ``"BMP"``, ``"GIF"``) the bytes start with, or None."""
    return next((fmt for magic, fmt in _ACCEPTED_MAGIC if head.startswith(magic)), None)


def _refused_kind(head: bytes) -> str | None:
    """A name for a known image or document type we do not accept, from its magic bytes."""
    known = next((kind for magic, kind in _REFUSED_MAGIC if head.startswith(magic)), None)
    if known:
        return known
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return _HEIF_BRANDS[head[8:12]]
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "SVG"
    return None


def read_upload(source: bytes | BinaryIO, name: str) -> bytes:
    """The upload's bytes, refusing an empty file or one over :data:`MAX_UPLOAD_BYTES`; a stream
    (e.g. Streamlit's UploadedFile) is read no further than one byte past the limit."""
    data = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else source.read(MAX_UPLOAD_BYTES + 1)
    if not data:
        raise UploadError(f"{name}: the file is empty; upload {ACCEPTED_TEXT} image")
    if len(data) > MAX_UPLOAD_BYTES:
        size = f"{_megabytes(len(data))}" if isinstance(source, (bytes, bytearray, memoryview)) else "larger"
        raise UploadError(
            f"{name}: the file is {size} but the limit is {_megabytes(MAX_UPLOAD_BYTES)}; "
            "upload a smaller image (a lower resolution, or JPEG instead of BMP)"
        )
    return data


def check_upload(data: bytes, name: str) -> tuple[str, int, int]:
    """Validate ``data`` without decoding its pixels: size, type by content, pixel count from the
    header. Returns ``(format, width, height)``; raises :class:`UploadError` otherwise."""
    data = read_upload(data, name)
    fmt = sniff_format(data[:32])
    if fmt is None:
        kind = _refused_kind(data[:64])
        if kind is not None:
            raise UploadError(f"{name}: {kind} is not accepted; upload {ACCEPTED_TEXT}")
        raise UploadError(
            f"{name}: the contents are not {ACCEPTED_TEXT} image, whatever the file name says; upload {ACCEPTED_TEXT}"
        )
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as image:
            width, height = image.size
    except Image.DecompressionBombError as err:
        raise UploadError(_too_many_pixels(name, str(err))) from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise UploadError(
            f"{name}: starts like a {fmt} file but its header is damaged ({err}); re-save the image as {fmt} "
            "and upload it again"
        ) from None
    if max(width, height) > MAX_UPLOAD_SIDE:
        raise UploadError(_too_many_pixels(name, f"{width} x {height} pixels"))
    return fmt, width, height


def _too_many_pixels(name: str, found: str) -> str:
    return (
        f"{name}: the image is too large to decode ({found}); the limit is {MAX_UPLOAD_SIDE} pixels a side "
        f"and the models see 32 x 32 at most: scale it down before uploading"
    )


def _to_mode(image: Image.Image, mode: str) -> Image.Image:
    """``image`` as ``mode`` (L or RGB): transparency over white, 16-bit grey scaled to 8 bits."""
    if image.mode in _SIXTEEN_BIT_MODES:
        grey = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(grey.round().clip(0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return image.convert(mode)


def load_upload(source: bytes | BinaryIO, name: str, *, channels: int, image_size: int) -> torch.Tensor:
    """The uploaded image as a uint8 ``channels x image_size x image_size`` tensor, as it was drawn (see
    the module docstring for every step; :func:`orient` turns it to the dataset's polarity);
    :class:`UploadError` with a plain message for anything refused."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    data = read_upload(source, name)
    fmt, _, _ = check_upload(data, name)
    mode = "L" if channels == 1 else "RGB"
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as image:
            if fmt == "JPEG":
                image.draft(mode, (image_size, image_size))
            upright = ImageOps.exif_transpose(image)
            converted = _to_mode(upright, mode)
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise UploadError(
            f"{name}: the {fmt} image could not be decoded ({err}); the file may be truncated or damaged, "
            f"so re-save it and upload it again"
        ) from None
    shrinking = min(converted.size) >= image_size
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BICUBIC
    square = ImageOps.fit(converted, (image_size, image_size), method=method)
    pixels = np.array(square, dtype=np.uint8)
    pixels = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(pixels))


# ---------------------------------------------------------------- polarity


def border_positions(images: np.ndarray) -> np.ndarray:
    """Where each image's border (mean grey of the outer ``BORDER_SHARE`` of each side) lies between its
    darkest and brightest pixel: 0 as dark as the darkest, 1 as bright as the brightest; NaN for an image
    with less than ``FLAT_SPAN`` grey levels between them. ``images``: N x C x H x W (or C x H x W)."""
    grey = np.asarray(images, dtype=np.float64)
    grey = grey.reshape(-1, *grey.shape[-3:]).mean(axis=1)
    height, width = grey.shape[-2:]
    ring = max(1, round(BORDER_SHARE * min(height, width)))
    edge = np.ones((height, width), dtype=bool)
    edge[ring:-ring, ring:-ring] = False
    flat = grey.reshape(len(grey), -1)
    darkest, brightest = flat.min(axis=1), flat.max(axis=1)
    span = brightest - darkest
    with np.errstate(invalid="ignore", divide="ignore"):
        position = (grey[:, edge].mean(axis=1) - darkest) / span
    return np.where(span >= FLAT_SPAN, position, np.nan)


def polarity(image: np.ndarray) -> str | None:
    """``LIGHT_ON_DARK`` when the image's border is near its dark end, ``DARK_ON_LIGHT`` when near its
    light end, None when it cannot tell (a border half-way, or a flat image). ``image``: C x H x W."""
    position = float(border_positions(image)[0])
    if position < DARK_BORDER:
        return LIGHT_ON_DARK
    if position > LIGHT_BORDER:
        return DARK_ON_LIGHT
    return None


def dataset_polarity(images: np.ndarray) -> str | None:
    """The polarity that at least ``DATASET_AGREEMENT`` of ``images`` (N x C x H x W; at most
    ``DATASET_SAMPLE`` of them, evenly spaced, are measured) share, or None (photos such as CIFAR's, where
    objects are darker or lighter than their surroundings from image to image)."""
    positions = border_positions(images[:: max(1, len(images) // DATASET_SAMPLE)])
    for found, share in (
        (LIGHT_ON_DARK, np.mean(positions < DARK_BORDER)),
        (DARK_ON_LIGHT, np.mean(positions > LIGHT_BORDER)),
    ):
        if share >= DATASET_AGREEMENT:
            return found
    return None


@dataclasses.dataclass(frozen=True)
class Orientation:
    """What :func:`orient` did to an upload's polarity, and why."""

    inverted: bool
    image: str | None  # the upload's polarity as drawn; None: could not tell
    dataset: str | None  # the dataset's; None: it has none
    chosen: bool  # the user said whether to invert, instead of the image's polarity

    def note(self) -> str:
        """One line for the page: what was done and why."""
        image = f"the image is {self.image}" if self.image else "the image's polarity is unclear"
        dataset = f"the dataset is {self.dataset}" if self.dataset else "the dataset has no single polarity"
        if self.chosen:
            return f"{'inverted' if self.inverted else 'not inverted'}, as chosen ({image}; {dataset})"
        if self.inverted:
            return f"inverted: the image was {self.image}; {dataset}"
        if self.image == self.dataset:
            return f"not inverted: {image}, like the dataset"
        return f"not inverted: {image}; {dataset}"


def orient(pixels: torch.Tensor, dataset: str | None, invert: bool | None = None) -> tuple[torch.Tensor, Orientation]:
    """``pixels`` (uint8, as :func:`load_upload` decoded them) turned to the ``dataset``'s polarity: inverted
    when the image's polarity is the other one, or as ``invert`` says when it is given; and what was done."""
    found = polarity(pixels.numpy())
    decided = dataset is not None and found is not None and found != dataset
    inverted = decided if invert is None else bool(invert)
    oriented = 255 - pixels if inverted else pixels
    return oriented, Orientation(inverted=inverted, image=found, dataset=dataset, chosen=invert is not None)
