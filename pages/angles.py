"""Angles: how far each feature sits from its own class direction and from the others, per loss.

Two kinds of class direction appear here and each figure names its own: the loss's class vectors
(classifier weights, or centers) and the class means (the mean direction of a class's test features).
A number shown twice is the same number.
"""

from __future__ import annotations

import streamlit as st

import ui
from lab import datasets, figures
from lab.analysis import playground, wording
from lab.analysis.geometry import min_off_diagonal
from losses.geometry import best_spacing_degrees, best_spacing_is_known
from ui import health, layout, loaders, seeds, titles
from ui.text import plain

ui.run_inside_app()

st.title("Angles")
loaded = seeds.one_seed(health.loaded_runs_or_stop())  # one training seed at a time
runs = [record for record, _ in loaded]

class_names = datasets.info(runs[0].config.dataset).class_names  # the registry's: no dataset needed
feat_dim = runs[0].config.feat_dim
best = best_spacing_degrees(len(class_names), feat_dim)
known = best_spacing_is_known(len(class_names), feat_dim)
best_spread = "evenly spaced around the circle" if feat_dim == 2 else "spread as evenly as possible (Tammes' problem)"
spread_note = (
    f"however {len(class_names)} directions are placed in {feat_dim}-D, the closest two are at most "
    f"{best:.1f}° apart, as when they are {best_spread}"
    if known
    else f"the closest two of {len(class_names)} directions in {feat_dim}-D are at most about {best:.1f}° apart "
    "(a numerical estimate of the best spread, Tammes' problem)"
)
margin = st.slider(
    "Margin (degrees)",
    0,
    60,
    10,
    key="angle_margin",
    help="A sample is beyond the margin when its nearest other class vector is at least this many degrees "
    "farther away than its own.",
)
st.caption(
    f"All {len(loaded[0][1].labels)} test images. **Class vectors**: each loss's own class directions, its classifier "
    "weights (or, for center loss and LMD, its class centers). **Class means**: the mean direction of a class's "
    f"test features. **Dashed line**: {spread_note}; so the shortest bar (outlined) reaches the line at best, and "
    "other classes' nearest neighbours may be farther away."
)

for column, (record, arrays) in layout.grid(
    layout.shown(loaded, lambda item: titles.loss_label(item[0]), "angle_loss"), layout.per_row()
):
    stats = loaders.angle_stats(record, arrays)
    numbers = loaders.summary(record, float(margin))
    _, head, _ = loaders.trained_model(record)
    vectors = playground.directions_name(head) if stats.uses_head_directions else "class means"
    vector_min = min_off_diagonal(stats.direction_angles)
    with column:
        st.markdown(f"#### {plain(titles.loss_label(record))}")
        st.markdown(
            f"**{numbers['mean_within_class_angle']:.1f}°** within class · "
            f"**{numbers['min_between_class_angle']:.1f}°** min between class means · "
            f"**{vector_min:.1f}°** min between {vectors} · "
            f"**{wording.percent_text(stats.share_beyond_margin(margin), 0)}** beyond {margin}°",
            help="Within class: mean angle between a feature and its class mean. Between class means: the smallest "
            f"angle between two classes' mean directions. Between {vectors}: the smallest angle between two of the "
            "loss's class vectors (the chart below). Beyond the margin: share of samples whose nearest other class "
            "vector is at least the margin farther away than their own.",
        )
        layout.chart(
            st,
            figures.angle_histogram(stats, "own_vs_other", f"angle of a feature to the {vectors}"),
            key=f"own-{record.run_id}",
        )
        layout.chart(st, figures.angle_histogram(stats, "pairs", "pairs of features"), key=f"pairs-{record.run_id}")
        layout.chart(
            st,
            figures.direction_spacing(
                stats.direction_angles,
                class_names,
                best,
                f"{vectors}: angle to the nearest other<br>(min {vector_min:.1f}°)",
                known=known,
            ),
            key=f"spacing-{record.run_id}",
        )
