"""The Learn page's loss playground: pick a loss, its settings, the class directions and how far training
has come, and see what the loss asks of one feature anywhere in a 2-D feature space (computed by
:mod:`lab.analysis.playground` with the real heads); a click reads every loss at that point."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import streamlit as st

import losses
from lab import figures
from lab.analysis import playground
from lab.runs.contents import RunStoreError
from lab.runs.record import RunRecord
from lab.settings.experiment import loss_title
from ui import form_widgets, layout, loaders, session, titles
from ui.text import plain

EVEN, RUN = "even", "run"
DEFAULT_EXTENT = 2.5
END_OF_TRAINING = 1.0  # margins at full strength: what the loss asks of a trained model


@st.cache_data(show_spinner=False, max_entries=32)
def _field(
    name: str, directions: tuple[tuple[float, ...], ...], label: int, params: tuple, extent: float, progress: float
) -> playground.LossField:
    return playground.loss_field(name, np.array(directions), label, dict(params), extent=extent, progress=progress)


def _trained_directions() -> dict[str, tuple[RunRecord, np.ndarray, float]]:
    """The selected experiment's 2-D runs with class vectors: label -> (record, directions, feature scale).
    A run whose files cannot be read is left out (the other pages name its problem)."""
    found = {}
    for record in session.selected_runs():
        if record.config.feat_dim != 2:
            continue
        try:
            arrays = loaders.run_arrays(record)
        except (RunStoreError, KeyError, ValueError, TypeError):
            continue
        if arrays.directions is not None:
            scale = float(np.percentile(np.linalg.norm(arrays.features, axis=1), 95)) * 1.1
            found[titles.loss_label(record)] = (record, arrays.directions, scale)
    return found


def _settings(name: str) -> dict[str, Any] | None:
    """The chosen loss's hyperparameters from their declarations (None, with a message, when invalid)."""
    specs = losses.info(name).hparams
    if not specs:
        return {}
    with st.expander(f"Settings of {loss_title(name)}"):
        values = {
            spec.name: form_widgets.draw(
                dataclasses.replace(form_widgets.hparam_widget(name, spec), key=f"playground.{name}.{spec.name}")
            )
            for spec in specs
        }
    try:
        return dataclasses.asdict(losses.make_params(name, values))
    except losses.HparamError as err:
        st.error(plain(err), icon=":material/error:")
        return None


def _pick(point: dict) -> None:
    st.session_state[session.PLAYGROUND_POINT] = [float(point["x"]), float(point["y"])]


def draw() -> None:
    st.header("Loss playground")
    st.caption(
        "A feature of one class, placed anywhere in a 2-D feature space. The colour is the loss the chosen head "
        "gives it, the white arrows point downhill (the negative gradient: where training pushes the feature), "
        "the white lines are the decision boundaries and the pale band is where a margin loss still penalises a "
        "feature of this class that it already classifies right. A loss whose margin follows a schedule is "
        "shown at the end of training unless you move the training progress. Click anywhere to read every loss "
        "there. The losses that add a term over the whole batch (AMC, OPL, LMD, center loss) need other samples, "
        "so they are not offered."
    )
    names = [name for name in losses.names() if playground.has_own_value(name)]
    controls, plot = st.columns([1, 2.4], gap="medium")
    with controls:
        name = st.selectbox("Loss", names, format_func=loss_title, key="playground_loss")
        trained = _trained_directions()
        source = EVEN
        if trained:
            source = (
                st.segmented_control(
                    "Class directions",
                    [EVEN, RUN],
                    default=EVEN,
                    format_func={EVEN: "evenly spaced", RUN: "a trained run's"}.get,
                    key="playground_source",
                    help="Evenly spaced unit vectors, or the final class vectors of a 2-D run of this experiment.",
                )
                or EVEN
            )
        if source == RUN:
            run_label = st.selectbox("Run", list(trained), key="playground_run")
            record, directions, scale = trained[run_label]
            class_names = [str(c) for c in loaders.dataset_of(record).class_names]
            default_extent = round(scale, 1)
        else:
            count = st.slider("Classes", 3, 10, 10, key="playground_classes")
            directions = playground.evenly_spaced(count)
            class_names = [str(c) for c in range(count)]
            default_extent = DEFAULT_EXTENT
        label = st.selectbox(
            "The feature's class",
            range(len(class_names)),
            format_func=class_names.__getitem__,
            key="playground_label",
        )
        extent = st.slider(
            "Half-width of the plane",
            0.5,
            12.0,
            float(min(max(default_extent, 0.5), 12.0)),
            0.5,
            key="playground_extent",
        )
        progress = END_OF_TRAINING
        if losses.get(name).scheduled:
            progress = st.slider(
                "Training progress",
                0.0,
                1.0,
                END_OF_TRAINING,
                0.05,
                key="playground_progress",
                help="Where in training the loss's schedule stands: 0 is the first step, 1 the last. "
                "L-Softmax and SphereFace start as almost plain softmax and bring their margin in as lambda "
                "falls; CosFace and ArcFace warm their margin up from 0.",
            )
        params = _settings(name)
    if params is None:
        return
    field = _field(
        name, tuple(map(tuple, directions)), int(label), tuple(sorted(params.items())), float(extent), progress
    )
    point = st.session_state.get(session.PLAYGROUND_POINT)
    fig = figures.loss_field_figure(
        field,
        directions,
        class_names,
        int(label),
        title=f"{loss_title(name)}: loss of a feature of class {class_names[label]}",
        picked=None if point is None else np.array(point),
    )
    layout.pickable_chart(plot, fig, f"playground-{name}", _pick)
    if field.schedule:
        values = ", ".join(f"{key} {value:.3g}" for key, value in field.schedule.items())
        plot.caption(f"At {field.progress:.0%} of training {loss_title(name)}'s schedule gives {values}.")
    if point is None:
        st.caption("Click a point of the plane to compare every loss there.")
        return
    rows = playground.readings(names, directions, int(label), np.array(point), {name: params}, progress)
    st.markdown(f"**Every loss at ({point[0]:.2f}, {point[1]:.2f}), for a feature of class {class_names[label]}**")
    st.dataframe(
        [
            {
                "loss": loss_title(row["loss"]) + (" (your settings)" if row["loss"] == name else ""),
                "loss value": row["value"],
                "downhill x": -row["gradient"][0],
                "downhill y": -row["gradient"][1],
                "steepness": row["gradient_norm"],
                "decides for": class_names[row["decides"]],
            }
            for row in rows
        ],
        hide_index=True,
        column_config={
            "loss value": st.column_config.NumberColumn(format="%.3f"),
            "downhill x": st.column_config.NumberColumn(format="%+.3f", help="Negative gradient, x component"),
            "downhill y": st.column_config.NumberColumn(format="%+.3f", help="Negative gradient, y component"),
            "steepness": st.column_config.NumberColumn(format="%.3f", help="Length of the gradient"),
        },
    )
    st.caption(
        f"Every other loss at its default settings, with the same class directions and its schedule at "
        f"{progress:.0%} of training."
    )
