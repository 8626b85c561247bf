"""Grad-CAM: the same images explained by every loss's model, side by side, with a faithfulness score."""

from __future__ import annotations

import numpy as np
import streamlit as st

import ui
from lab import gradcam
from lab.uploads import ACCEPTED_FORMATS, UploadError, limits_text, load_upload
from ui import cams, health, layout, loaders, titles

ui.run_inside_app()

st.title("Grad-CAM")
loaded = health.loaded_runs_or_stop()
runs = [record for record, _ in loaded]

dataset = loaders.dataset_of(runs[0])
class_names = dataset.class_names

pick_col, method_col, target_col, view_col = st.columns(4)
with pick_col:
    image_mode = st.selectbox("Images", cams.IMAGE_MODES, key="cam_images")
    class_index = None
    if image_mode == "by class":
        class_index = st.selectbox(
            "Class", range(len(class_names)), format_func=lambda c: class_names[c], key="cam_class_filter"
        )
    count = st.slider("How many", 1, 12, 6, key="cam_count")
    seed = int(st.number_input("Seed", 0, 10**6, 0, key="cam_seed"))
with method_col:
    method = st.selectbox("Method", list(gradcam.CAM_METHODS), key="cam_method")
    if method == "ScoreCAM":
        st.caption(":orange[ScoreCAM runs the model once per channel: slow on a CPU.]")
    faithfulness = st.toggle(
        "Faithfulness (ROAD)",
        value=False,
        key="cam_faithfulness",
        help=gradcam.FAITHFULNESS_METRIC + ". Shown next to a random map's score.",
    )
with target_col:
    target_mode = st.selectbox(
        "Explain the",
        gradcam.TARGET_MODES,
        key="cam_target",
        format_func={"predicted": "predicted class", "true": "true class", "class": "chosen class"}.get,
    )
    chosen_class = None
    if target_mode == "class":
        chosen_class = st.selectbox(
            "Chosen class", range(len(class_names)), format_func=lambda c: class_names[c], key="cam_chosen"
        )
with view_col:
    display = st.segmented_control("Show", ["overlay", "raw map"], default="overlay", key="cam_display")
    per_map = st.toggle(
        "Each map on its own scale",
        value=False,
        key="cam_per_map",
        help="Off: one colour scale per row, so map strength compares across losses.",
    )

if image_mode == "upload":
    uploads = st.file_uploader(
        f"Your images ({limits_text()})",
        type=[f.lower() for f in ACCEPTED_FORMATS] + ["jpg"],
        accept_multiple_files=True,
        key="cam_uploads",
    )
    invert = st.toggle("Dark drawing on a light background (invert)", value=dataset.in_channels == 1, key="cam_invert")
    images, labels, row_titles = [], None, []
    for upload in (uploads or [])[:12]:
        try:
            images.append(
                load_upload(
                    upload, upload.name, channels=dataset.in_channels, image_size=dataset.image_size, invert=invert
                ).numpy()
            )
            row_titles.append(upload.name)
        except UploadError as err:
            st.error(str(err), icon=":material/error:")
    if not images:
        st.info("Upload one or more images to explain them with every loss's model.")
        st.stop()
    if target_mode == "true":
        st.warning("Uploaded images have no true class: explaining the predicted class instead.")
        target_mode = "predicted"
    pixels = np.stack(images)
else:
    predictions = [arrays.logits.argmax(1) for _, arrays in loaded]
    indices = cams.pick_images(loaded[0][1].labels, predictions, image_mode, count, seed, class_index)
    if len(indices) == 0:
        st.info("No test image matches this choice (for example, no loss misclassified any).")
        st.stop()
    pixels = dataset.test.images[indices].numpy()
    labels = dataset.test.labels[indices].numpy()
    row_titles = [f"#{i} · {class_names[c]}" for i, c in zip(indices, labels, strict=True)]

with st.spinner(f"Computing {method} for {len(pixels)} images x {len(loaded)} losses..."):
    results = [
        cams.cams(record, pixels, labels, method, target_mode, chosen_class, faithfulness) for record, _ in loaded
    ]

width = max(len(loaded) + 1, 6)  # at least six columns, so a few losses do not make giant cells
header = st.columns(width)
header[0].markdown("**image**")
for column, (record, _) in zip(header[1 : len(loaded) + 1], loaded, strict=True):
    column.markdown(f"**{titles.loss_label(record)}**")
grid_cells = []
for row, title in enumerate(row_titles):
    maps = [result.maps[row] for result in results]
    vmin, vmax = gradcam.shared_scale(maps)
    if per_map:
        maps = list(gradcam.normalise_each(np.stack(maps)))
    columns = st.columns(width)
    image = gradcam.overlay(pixels[row], np.zeros(pixels.shape[-2:]), 1.0, alpha=0.0)
    columns[0].image(layout.crisp(image), caption=title, width="stretch")
    cells = []
    for column, result, cam_map in zip(columns[1 : len(loaded) + 1], results, maps, strict=True):
        top = 1.0 if per_map else vmax
        low = 0.0 if per_map else vmin
        if display == "raw map":
            cell = gradcam.overlay(np.zeros_like(pixels[row]), cam_map, top, alpha=1.0, vmin=low)
        else:
            cell = gradcam.overlay(pixels[row], cam_map, top, vmin=low)
        cells.append(cell)
        caption = (
            f"explains {class_names[result.targets[row]]} · predicted {class_names[result.predicted[row]]} "
            f"({result.confidence[row]:.0%})"
        )
        if result.faithfulness is not None:
            caption += f" · ROAD {result.faithfulness[row]:+.2f} (random {result.random_faithfulness[row]:+.2f})"
        column.image(layout.crisp(cell), caption=caption, width="stretch")
    grid_cells.append([image, *cells])

scale_note = "each map on its own scale" if per_map else "one colour scale per row (raw map values)"
st.caption(
    f"{method} at each model's last convolutional layer, through the inference logits; {scale_note}; "
    f"turbo colour map (dark blue low, red high)."
)
if faithfulness:
    means = {
        titles.loss_label(record): float(np.mean(result.faithfulness))
        for (record, _), result in zip(loaded, results, strict=True)
    }
    random_mean = float(np.mean([np.mean(result.random_faithfulness) for result in results]))
    st.caption(
        "Mean ROAD faithfulness: "
        + " · ".join(f"{name} {value:+.3f}" for name, value in means.items())
        + f" · random maps {random_mean:+.3f}. Higher is more faithful."
    )
png = gradcam.grid_png(grid_cells, row_titles, ["image", *[titles.loss_label(r) for r, _ in loaded]])
st.download_button(
    "Download the grid as PNG",
    png,
    file_name=f"gradcam-{method}.png",
    mime="image/png",
    icon=":material/download:",
    on_click="ignore",
)
