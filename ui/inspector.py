"""The selected-image panel of the Feature space page: the image, each loss's prediction, its Grad-CAM.

It draws the maps as the Grad-CAM page does (the same scale, opacity and layer, kept in the session). An
image comes from the runs' stored test images when they hold it, and from the dataset otherwise (when this
machine has it).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from lab.interpret import gradcam
from ui import cams, layout, session, titles
from ui.text import plain


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def image_panel(loaded: list, selected: list[int], per_row: int | None = None) -> None:
    """Show one test image under every loss; ``selected`` are image indices clicked in the charts. The
    images go ``per_row`` to a row (default: all in one). The panel takes the image from the runs' stored
    images when they hold it, else from the dataset when this machine has it."""
    st.subheader("Inspect an image")
    record, arrays = loaded[0]
    on_machine = cams.dataset_on_machine(record)
    # The stored images answer every pick among them, so the dataset (70,000 images for Fashion-MNIST) is
    # loaded only for an index outside them.
    source = cams.stored_images(record, arrays) or cams.image_source(record, arrays)
    if selected:
        st.session_state[session.INSPECT_INDEX] = int(selected[-1])
    default = int(st.session_state.get(session.INSPECT_INDEX, int(source.indices[0])))
    index = int(
        st.number_input(
            "Test image index",
            0,
            source.test_size - 1,
            default,
            key=session.INSPECT_INDEX,
            help="Click a point in a chart, or type an index."
            + (
                " Only the runs' stored test images can be shown here: the dataset is not on this machine."
                if source.stored and not on_machine
                else ""
            ),
        )
    )
    if index not in source.indices and source.stored and on_machine:
        source = cams.image_source(record, arrays)
    if index not in source.indices:
        st.info(
            f"Image #{index} is not among the {len(source.indices)} test images the runs stored, and the dataset "
            f"is not on this machine: pick a point in a chart (stored images include #{int(source.indices[0])})."
        )
        return
    row = source.rows(np.array([index]))
    pixels = source.images[row]
    label = int(source.labels[row[0]])
    with st.expander("Map settings", expanded=False):
        view = cams.view_controls()
    columns = [column for column, _ in layout.grid(range(len(loaded) + 1), per_row or len(loaded) + 1)]
    columns[0].image(
        layout.crisp(gradcam.overlay(pixels[0], np.zeros(pixels.shape[-2:]), 1.0, alpha=0.0)),
        caption=f"#{index} · true class {source.class_names[label]}",
        width="stretch",
    )
    results = [
        cams.cams(record, pixels, np.array([label]), "GradCAM", "predicted", layer=view.layer) for record, _ in loaded
    ]
    maps, vmin, vmax = cams.scaled([result.maps[0] for result in results], view)
    for column, (record, arrays), cam_map in zip(columns[1:], loaded, maps, strict=True):
        probabilities = _softmax(arrays.logits[index])
        predicted = int(probabilities.argmax())
        cell = gradcam.overlay(pixels[0], cam_map, vmax, alpha=view.opacity, vmin=vmin)
        caption = (
            f"{plain(titles.loss_label(record))}: {source.class_names[predicted]} ({probabilities[predicted]:.0%}, "
            + ("right)" if predicted == label else "wrong)")
        )
        column.image(
            layout.crisp(cell if predicted == label else gradcam.framed(cell)),
            width="stretch",
            caption=caption if predicted == label else f":red[✗ {caption}]",
        )
    st.image(cams.colorbar(view, vmax), width="stretch")
    st.caption(f"Grad-CAM of each loss's predicted class at the {cams.LAYERS[view.layer]}; {cams.SCALES[view.scale]}.")
