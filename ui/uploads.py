"""The Grad-CAM page's own images: the uploader, the polarity choice, and a line per image saying whether it
was inverted to the dataset's polarity and why (decided by :mod:`lab.datasets.uploads`)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from lab.datasets.uploads import ACCEPTED_FORMATS, MAX_UPLOADS, UploadError, dataset_polarity, limits_text
from ui import loaders
from ui.cams import ImageSource
from ui.text import plain

FROM_IMAGE, INVERT, KEEP = "from each image", "invert every image", "invert none"
CHOICES = {FROM_IMAGE: None, INVERT: True, KEEP: False}  # the choice as orient's ``invert``


def uploaded_images(source: ImageSource) -> tuple[list[np.ndarray], list[str]]:
    """The user's uploads as the models' uint8 input (C x H x W, at most ``MAX_UPLOADS``) and their file
    names, each turned to the polarity of ``source``'s dataset unless the user chose otherwise; refusals
    and what was done to each image are shown on the page."""
    files = st.file_uploader(
        f"Your images ({limits_text()})",
        type=[f.lower() for f in ACCEPTED_FORMATS] + ["jpg"],
        accept_multiple_files=True,
        key="cam_uploads",
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
    files = files or []
    if len(files) > MAX_UPLOADS:
        ignored = len(files) - MAX_UPLOADS
        st.warning(f"Only the first {MAX_UPLOADS} of your {len(files)} images are explained; {ignored} are ignored.")
    images, names, notes = [], [], []
    for upload in files[:MAX_UPLOADS]:
        try:
            pixels, orientation = loaders.decoded_upload(
                upload.getvalue(),
                upload.name,
                source.channels,
                source.image_size,
                dataset,
                CHOICES[choice or FROM_IMAGE],
            )
        except UploadError as err:
            st.error(plain(err), icon=":material/error:")
            continue
        images.append(pixels)
        names.append(upload.name)
        notes.append(f"{plain(upload.name)}: {plain(orientation.note())}")
    if notes:
        st.caption("  \n".join(notes))
    return images, names
