"""LossLens: the Streamlit entry point. Sets the page up, draws the page's skeleton (navigation, heading,
presentation switch) and the shared sidebar (which experiment to look at), then runs the page chosen in
``pages/``.

    streamlit run app.py

The skeleton comes before the imports of ``lab`` and ``ui``, which bring in torch and plotly (about a
second of a new server's first visit), so a new user sees the app's frame and the page's heading first.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui import presentation

st.set_page_config(
    page_title="LossLens",
    page_icon=str(Path(__file__).parent / "assets" / "icon.png"),
    layout="wide",
    initial_sidebar_state="collapsed" if presentation.presenting() else "auto",
)

PAGES = {  # the page's heading, and how the navigation shows it
    "Train an experiment": st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    "Feature space": st.Page(
        "pages/feature_space.py",
        title="Feature space",
        icon=":material/scatter_plot:",
        url_path="features",
        default=True,
    ),
    "Angles": st.Page("pages/angles.py", title="Angles", icon=":material/architecture:", url_path="angles"),
    "Grad-CAM": st.Page(
        "pages/gradcam.py", title="Grad-CAM", icon=":material/local_fire_department:", url_path="gradcam"
    ),
    "Compare": st.Page("pages/compare.py", title="Compare", icon=":material/table_chart:", url_path="compare"),
    "Learn": st.Page("pages/learn.py", title="Learn", icon=":material/school:", url_path="learn"),
}

page = st.navigation(list(PAGES.values()), position="top")
heading_col, switch_col = st.columns([5, 1], vertical_alignment="center")
heading_col.title(next(heading for heading, each in PAGES.items() if each is page))
presentation.switch(switch_col)

from lab import logs  # noqa: E402 (after the skeleton: see the module docstring)
from ui import sidebar  # noqa: E402

logs.configure()
sidebar.draw()
page.run()
