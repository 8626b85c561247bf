"""The Grad-CAM page's own images: the uploader, the polarity choice, and a line per image saying whether it
was inverted to the dataset's polarity and why (decided by :mod:`lab.datasets.uploads`).

Streamlit keeps every uploaded file's bytes in the server's memory until the browser removes it or the
session ends, so a page that reads them once lets them go: each upload is decoded once to the models' input
(a few kilobytes) and kept in the session as that, and its file is dropped from the server's upload store,
as are files beyond :data:`MAX_UPLOADS` and refused ones. The browser's uploader refuses a file over the size
limit before sending it, and the server refuses one larger than ``server.maxUploadSize`` as it arrives."""

from __future__ import annotations

import dataclasses

import numpy as np
import streamlit as st
import torch
from streamlit.runtime.scriptrunner import get_script_run_ctx

from lab.datasets.uploads import (
    ACCEPTED_FORMATS,
    MAX_UPLOAD_BYTES,
    MAX_UPLOADS,
    UploadError,
    dataset_polarity,
    limits_text,
    load_upload,
    orient,
)
from ui.cams import ImageSource
from ui.text import plain

FROM_IMAGE, INVERT, KEEP = "from each image", "invert every image", "invert none"
CHOICES = {FROM_IMAGE: None, INVERT: True, KEEP: False}  # the choice as orient's ``invert``
UPLOADS = "cam_uploads"
KEPT = "cam_uploads_kept"  # file id -> Kept: each upload as the models read it, once its file is let go
MAX_UPLOAD_MB = MAX_UPLOAD_BYTES // (1024 * 1024)  # the uploader's limit, in the megabytes it counts in


@dataclasses.dataclass(frozen=True)
class Kept:
    """An upload once read: its name and either its pixels as drawn (C x H x W uint8, for the models'
    channels and image size in ``shape``) or why it was refused."""

    name: str
    shape: tuple[int, int]
    pixels: np.ndarray | None
    refusal: str = ""


def uploaded_images(source: ImageSource) -> tuple[list[np.ndarray], list[str]]:
    """The user's uploads as the models' uint8 input (C x H x W, at most ``MAX_UPLOADS``) and their file
    names, each turned to the polarity of ``source``'s dataset unless the user chose otherwise; refusals
    and what was done to each image are shown on the page."""
    st.file_uploader(
        f"Your images ({limits_text()})",
        type=[f.lower() for f in ACCEPTED_FORMATS] + ["jpg"],
        accept_multiple_files=True,
        key=UPLOADS,
        max_upload_size=MAX_UPLOAD_MB,
    )
    dataset = dataset_polarity(source.images)
    choice = st.segmented_control(
        "Invert",
        list(CHOICES),
        default=FROM_IMAGE,
        key="cam_polarity",
        help="The models saw "
        + (f"{dataset} images" if dataset else "images of both polarities")
        + ". From each image: an image whose border is light while the dataset's is dark (or the other way "
        "round) is inverted before the models see it. Or invert every image, or none.",
    )
    kept = read_uploads((source.channels, source.image_size))
    images, names, notes = [], [], []
    for upload in kept:
        if upload.pixels is None:
            st.error(plain(upload.refusal), icon=":material/error:")
            continue
        pixels, orientation = orient(torch.from_numpy(upload.pixels), dataset, CHOICES[choice or FROM_IMAGE])
        images.append(pixels.numpy())
        names.append(upload.name)
        notes.append(f"{plain(upload.name)}: {plain(orientation.note())}")
    if notes:
        st.caption("  \n".join(notes))
    return images, names


def read_uploads(shape: tuple[int, int]) -> list[Kept]:
    """The uploads the uploader lists, each read once for the models' (channels, image size) ``shape`` and its
    file then let go; the first :data:`MAX_UPLOADS` only (the page says how many are ignored, and their files
    go at once). An upload read for another shape, whose file is gone, is named with what to do."""
    listed = list(st.session_state.get(UPLOADS) or [])  # let-go files stay listed, by id, as the browser shows them
    kept: dict[str, Kept] = st.session_state.setdefault(KEPT, {})
    for gone in set(kept) - {upload.file_id for upload in listed}:  # removed in the browser
        del kept[gone]
    if len(listed) > MAX_UPLOADS:
        ignored = len(listed) - MAX_UPLOADS
        st.warning(f"Only the first {MAX_UPLOADS} of your {len(listed)} images are explained; {ignored} are ignored.")
    found = []
    for upload in listed[:MAX_UPLOADS]:
        read = kept.get(upload.file_id)
        if read is None or read.shape != shape:
            if hasattr(upload, "getvalue"):
                read = _read(upload, shape)
                kept[upload.file_id] = read
            else:
                name = read.name if read is not None else "an image"
                read = Kept(name, shape, None, f"{name}: upload it again to explain it with these models")
        found.append(read)
    for upload in listed:
        _let_go(upload.file_id)
    return found


def _read(upload, shape: tuple[int, int]) -> Kept:
    channels, size = shape
    try:
        pixels = load_upload(upload.getvalue(), upload.name, channels=channels, image_size=size)
    except UploadError as err:
        return Kept(upload.name, shape, None, str(err))
    return Kept(upload.name, shape, pixels.numpy())


def _let_go(file_id: str) -> None:
    """Drop an upload's bytes from the server's upload store (the session keeps what was read from them)."""
    context = get_script_run_ctx()
    if context is not None:
        context.uploaded_file_mgr.remove_file(context.session_id, file_id)
