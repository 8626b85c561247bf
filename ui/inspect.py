"""The selected-image panel of the Feature space page: the image, each loss's prediction, its Grad-CAM."""

from __future__ import annotations

import numpy as np
import streamlit as st

from lab import gradcam
from lab.data import Dataset
from ui import cams, layout, session, titles


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def image_panel(loaded: list, dataset: Dataset, selected: list[int]) -> None:
    """Show one test image under every loss; ``selected`` are image indices clicked in the charts."""
    st.subheader("Inspect an image")
    if selected:
        st.session_state[session.INSPECT_INDEX] = int(selected[-1])
    index = int(
        st.number_input(
            "Test image index",
            0,
            len(dataset.test) - 1,
            int(st.session_state.get(session.INSPECT_INDEX, 0)),
            key=session.INSPECT_INDEX,
            help="Click a point in a 2-D chart above, or type an index.",
        )
    )
    pixels = dataset.test.images[index : index + 1].numpy()
    label = int(dataset.test.labels[index])
    columns = st.columns(len(loaded) + 1)
    columns[0].image(
        layout.crisp(gradcam.overlay(pixels[0], np.zeros(pixels.shape[-2:]), 1.0, alpha=0.0)),
        caption=f"#{index} · true class {dataset.class_names[label]}",
        width="stretch",
    )
    results = [
        cams.cams(record, pixels, np.array([label]), "GradCAM", "predicted", faithfulness=False) for record, _ in loaded
    ]
    vmin, vmax = gradcam.shared_scale([result.maps[0] for result in results])
    for column, (record, arrays), result in zip(columns[1:], loaded, results, strict=True):
        probabilities = _softmax(arrays.logits[index])
        predicted = int(probabilities.argmax())
        verdict = "right" if predicted == label else "wrong"
        column.image(
            layout.crisp(gradcam.overlay(pixels[0], result.maps[0], vmax, vmin=vmin)),
            width="stretch",
            caption=f"{titles.loss_label(record)}: {dataset.class_names[predicted]} "
            f"({probabilities[predicted]:.0%}, {verdict})",
        )
    st.caption("Grad-CAM of each loss's predicted class, one colour scale across the row.")
