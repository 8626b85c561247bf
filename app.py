"""LossLens: the Streamlit entry point. Sets the page up, draws the shared sidebar (which experiment
to look at) and navigates over the pages in ``pages/``.

    streamlit run app.py

``streamlit run`` finds the ``st.App`` below and serves this file through it, with the middleware that
issues the owner cookie (:mod:`ui.owner_cookie`); each session's script run executes the file as
``__main__`` and draws the page.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

if __name__ == "__main__":  # a session's script run (the server's import below stays light)
    from lab import logs
    from ui import layout, loaders, sidebar

    logs.configure()
    st.set_page_config(
        page_title="LossLens",
        page_icon=str(Path(__file__).parent / "assets" / "icon.png"),
        layout="wide",
        initial_sidebar_state="collapsed" if layout.presenting() else "auto",
    )

    PAGES = [
        st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
        st.Page(
            "pages/features.py",
            title="Feature space",
            icon=":material/scatter_plot:",
            url_path="features",
            default=True,
        ),
        st.Page("pages/angles.py", title="Angles", icon=":material/architecture:", url_path="angles"),
        st.Page("pages/gradcam.py", title="Grad-CAM", icon=":material/local_fire_department:", url_path="gradcam"),
        st.Page("pages/compare.py", title="Compare", icon=":material/table_chart:", url_path="compare"),
        st.Page("pages/learn.py", title="Learn", icon=":material/school:", url_path="learn"),
    ]

    # the losses the server's starter named, before anything lists losses or reads a run trained with one
    problems, _ = loaders.loss_modules()
    for problem in problems:
        st.error(f"A loss module could not be loaded: {problem}", icon=":material/error:")

    page = st.navigation(PAGES, position="top")
    sidebar.draw()
    layout.presentation_switch()
    page.run()
else:  # imported by `streamlit run app.py` to serve the app
    from starlette.middleware import Middleware

    from ui.owner_cookie import OwnerCookie

    app = st.App(
        __file__,
        middleware=[Middleware(OwnerCookie, base_path=str(st.get_option("server.baseUrlPath") or ""))],
    )
