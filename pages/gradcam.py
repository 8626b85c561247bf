"""Grad-CAM: the same images explained by every loss's model, side by side, and how interpretable the maps are."""

from __future__ import annotations

import numpy as np
import streamlit as st

import ui
from lab.interpret import gradcam, scoring
from ui import cams, downloads, health, interpretability, layout, seeds, session, titles, uploads
from ui.text import plain

ui.run_inside_app()

st.title("Grad-CAM")
every_seed = health.loaded_runs_or_stop()
loaded = seeds.one_seed(every_seed)  # one training seed at a time
runs = [record for record, _ in loaded]
source = cams.image_source(runs[0], loaded[0][1])
class_names = source.class_names

pick_col, method_col, view_col = st.columns(3)
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
    display = st.segmented_control("Show", ["overlay", "map alone"], default="overlay", key="cam_display")
with view_col:
    view = cams.view_controls()

if image_mode == "upload":
    images, row_titles = uploads.uploaded_images(source)
    labels = None
    if not images:
        st.info("Upload one or more images to explain them with every loss's model.")
        st.stop()
    if target_mode == "true":
        st.warning("Uploaded images have no true class: explaining the predicted class instead.")
        target_mode = "predicted"
    pixels = np.stack(images)
else:
    predictions = [arrays.logits.argmax(1)[source.indices] for _, arrays in loaded]
    rows = cams.pick_images(source.labels, predictions, image_mode, count, seed, class_index)
    if len(rows) == 0:
        st.info("No test image matches this choice (for example, no loss misclassified any).")
        st.stop()
    pixels = source.images[rows]
    labels = source.labels[rows]
    row_titles = [f"#{source.indices[r]} · {class_names[c]}" for r, c in zip(rows, labels, strict=True)]
    with pick_col:
        st.caption(source.caption())

with st.spinner(f"Computing {method} for {len(pixels)} images x {len(loaded)} losses..."):
    results = [
        cams.cams(record, pixels, labels, method, target_mode, chosen_class, layer=view.layer) for record in runs
    ]

coarse = scoring.coarseness(pixels.shape[-2:], results[0].cam_shape)
if coarse:
    st.info(coarse, icon=":material/grid_view:")
    if session.DEFAULT_EXAMPLE in session.experiments() and runs[0].experiment != session.DEFAULT_EXAMPLE:
        st.button(
            "Open the 28x28 example",
            key="cam_open_example",
            icon=":material/open_in_new:",
            on_click=session.select_experiment,  # before the sidebar is drawn, so it shows the example
            args=(session.DEFAULT_EXAMPLE,),
        )

loss_names = [titles.loss_label(record) for record in runs]
header = st.columns(len(loaded) + 1)
header[0].markdown("**image**")
for column, name in zip(header[1:], loss_names, strict=True):
    column.markdown(f"**{plain(name)}**")
grid_cells, grid_wrong, largest = [], [], 0.0
for row, title in enumerate(row_titles):
    maps, vmin, vmax = cams.scaled([result.maps[row] for result in results], view)
    largest = max(largest, vmax)
    columns = st.columns(len(loaded) + 1)
    image = gradcam.overlay(pixels[row], np.zeros(pixels.shape[-2:]), 1.0, alpha=0.0)
    columns[0].image(layout.crisp(image), caption=title, width="stretch")
    cells, wrong_row = [], [False]
    for column, result, cam_map in zip(columns[1:], results, maps, strict=True):
        base = np.zeros_like(pixels[row]) if display == "map alone" else pixels[row]
        cell = gradcam.overlay(base, cam_map, vmax, alpha=1.0 if display == "map alone" else view.opacity, vmin=vmin)
        predicted = int(result.predicted[row])
        wrong = labels is not None and predicted != int(labels[row])
        shown = gradcam.framed(cell) if wrong else cell
        cells.append(shown)
        wrong_row.append(wrong)
        caption = f"predicted {class_names[predicted]} ({result.confidence[row]:.0%})"
        if wrong:
            caption = f":red[✗ {caption}]"
        if result.targets[row] != predicted:
            caption += f" · explains {class_names[result.targets[row]]}"
        column.image(layout.crisp(shown), caption=caption, width="stretch")
    grid_cells.append([image, *cells])
    grid_wrong.append(wrong_row)

bar = cams.colorbar(view, largest)
st.image(bar, width=360)
layer_text = cams.LAYERS[view.layer]
st.caption(
    f"{method} at each model's {layer_text} ({results[0].cam_shape[-2]}x{results[0].cam_shape[-1]} cells), through "
    f"the inference logits; {cams.SCALES[view.scale]}; turbo color map (dark blue low, red high). "
    "A red frame and caption mark a wrong prediction."
)
png = gradcam.grid_png(grid_cells, row_titles, ["image", *loss_names], grid_wrong, bar)
downloads.download(st, "Download the grid as PNG", png, f"gradcam-{method}.png")
downloads.composed_buttons(runs, pixels, labels, row_titles, method, view.layer)

st.header("How interpretable are these maps?")
interpretability.section(loaded, method, view.layer, every_seed)
