"""'Run on': this machine or the Ray cluster at LOSSLENS_RAY_ADDRESS, with what the cluster has, asked without
holding up the page."""

from __future__ import annotations

import functools
from collections.abc import Callable

import streamlit as st

from lab.settings.form import TrainSettings
from lab.training.backends import make_backend
from lab.training.backends.base import Backend, BackendError, ray_address
from lab.training.backends.probe import cluster_resources
from ui.text import plain

RUN_ON = "run_on"
CLUSTER_SECONDS = 30  # how long the Ray cluster's CPUs and GPUs are shown before they are asked again


@st.cache_data(ttl=CLUSTER_SECONDS, show_spinner="Asking the Ray cluster what it has...")
def _cluster(address: str) -> tuple[dict[str, float], str]:
    """The Ray cluster's CPUs and GPUs, or why it cannot be used (kept a while: an unreachable address
    would otherwise cost a connection attempt on every rerun)."""
    try:
        return cluster_resources(address), ""
    except BackendError as err:
        return {}, str(err)


def run_on_choice() -> str:
    """``local``, or ``ray`` when ``$LOSSLENS_RAY_ADDRESS`` names a cluster this server can reach."""
    address = ray_address()
    if not address:
        return "local"
    found, problem = _cluster(address)
    choice = st.radio(
        "Run on",
        ["local", "ray"],
        format_func={"local": "this machine", "ray": f"Ray cluster at {address}"}.get,
        key=RUN_ON,
        horizontal=True,
        disabled=bool(problem),
        help="On the Ray cluster each run is a task on a worker; progress and the runs' files come back here.",
    )
    if problem:
        st.caption(f":orange[{plain(problem)}.] Training runs on this machine.")
        return "local"
    st.caption(f"The Ray cluster has {found['CPU']:g} CPUs and {found['GPU']:g} GPUs.")
    return choice or "local"


def backend_of(settings: TrainSettings) -> Callable[[], Backend] | None:
    """What the job trains through: None for this machine, else a maker of the Ray backend."""
    if settings.backend != "ray":
        return None
    return functools.partial(make_backend, "ray", ray_address())
