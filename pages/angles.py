"""Angles: how far each feature sits from its own class direction and from the others, per loss."""

from __future__ import annotations

import streamlit as st

import ui
from lab import figures
from lab.analysis import min_off_diagonal
from losses.geometry import best_spacing_degrees
from ui import health, layout, loaders, titles

ui.run_inside_app()

st.title("Angles")
loaded = health.loaded_runs_or_stop()
runs = [record for record, _ in loaded]

dataset = loaders.dataset_of(runs[0])
feat_dim = runs[0].config.feat_dim
best = best_spacing_degrees(dataset.n_classes, feat_dim)
margin = st.slider(
    "Margin (degrees)",
    0,
    60,
    10,
    key="angle_margin",
    help="A sample is beyond the margin when its nearest other class direction is at least this many "
    "degrees farther away than its own class direction.",
)
st.caption(
    f"All {len(dataset.test)} test images. Class directions are each loss's class vectors (classifier weights or "
    f"centres). With {dataset.n_classes} classes in {feat_dim}-D, class directions can be at best {best:.1f}° apart."
)

for column, (record, arrays) in layout.grid(loaded):
    stats = loaders.angle_stats(record, arrays)
    numbers = loaders.summary(record, float(margin))
    with column:
        st.markdown(f"#### {titles.loss_label(record)}")
        st.markdown(
            f"**{numbers['mean_within_class_angle']:.1f}°** mean within-class · "
            f"**{numbers['min_between_class_angle']:.1f}°** min between-class · "
            f"**{stats.share_beyond_margin(margin):.0%}** beyond {margin}°",
            help="Within-class: mean angle between a feature and its class's mean direction. Between-class: "
            "smallest angle between two classes' mean directions. Beyond the margin: share of samples whose nearest "
            "other class direction is at least the margin farther away than their own.",
        )
        st.plotly_chart(
            figures.angle_histogram(stats, "own_vs_other", "angle to class directions"), key=f"own-{record.run_id}"
        )
        st.plotly_chart(figures.angle_histogram(stats, "pairs", "pairwise angles"), key=f"pairs-{record.run_id}")
        st.plotly_chart(
            figures.direction_spacing(
                stats.direction_angles,
                dataset.class_names,
                best,
                f"class directions: nearest neighbour (min {min_off_diagonal(stats.direction_angles):.1f}°)",
            ),
            key=f"spacing-{record.run_id}",
        )
