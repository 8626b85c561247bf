"""What the AppTest suites share: the app, run in this process, pointed at a runs folder a fixture trained;
a page opened on it as a browser would open it; and what the page sent, read back (its figures, and its
text as displayed)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
from streamlit.testing.v1 import AppTest

from ui import session

APP = str(Path(__file__).resolve().parents[1] / "app.py")
LANDING_PAGE = "pages/features.py"  # what the app shows before any page switch


@contextlib.contextmanager
def app_reads(runs_dir: Path, **env: str) -> Iterator[Path]:
    """Inside the block the app reads ``runs_dir`` (and the other settings in ``env``, such as
    ``LOSSLENS_CACHE_DIR``) with Streamlit's caches empty. The environment is restored and the caches are
    emptied again afterwards: the run store is a cached singleton, so the next module's app would otherwise
    still see these runs."""
    settings = {"LOSSLENS_RUNS_DIR": str(runs_dir), **env}
    previous = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        yield runs_dir
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def open_page(
    page: str,
    *,
    experiment: str | None = None,
    credential: str | None = None,
    state: Mapping[str, Any] | None = None,
    timeout: float = 180,
    **query: str,
) -> AppTest:
    """``page`` as a browser holding ``credential`` (None: one that has none yet) sees it, on ``experiment``
    (None: the one the app picks), with ``state`` already in the session and the other URL parameters
    ``query``. Fails the test if the page raised."""
    app = AppTest.from_file(APP, default_timeout=timeout)
    if credential is not None:
        app.session_state[session.CREDENTIAL] = credential
    for key, value in (state or {}).items():
        app.session_state[key] = value
    if experiment is not None:
        app.query_params[session.URL_EXPERIMENT] = experiment
    for key, value in query.items():
        app.query_params[key] = value
    app.run()
    if page != LANDING_PAGE:
        app.switch_page(page)
        app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def shown(markdown: str) -> str:
    """What Streamlit displays for ``markdown`` written by :func:`ui.text.plain` (escapes resolved)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u200b", "")


def figures(app: AppTest) -> list[dict]:
    """The plotly figures on the page, as the JSON the browser receives."""
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def values(trace: dict, axis: str) -> np.ndarray:
    """A trace's coordinates as floats: plotly writes numpy arrays as base64 typed arrays (with a shape when
    they have more than one axis), and lists with None for gaps."""
    data = trace.get(axis, [])
    if isinstance(data, dict) and "bdata" in data:
        flat = np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"])
        return flat.reshape([int(n) for n in str(data["shape"]).split(",")]) if "shape" in data else flat
    return np.asarray([np.nan if v is None else v for v in data], dtype=float)
