"""Who this browser is and what it has selected, and the objects one server process shares.

Every ``st.session_state`` and ``st.query_params`` key the app keeps is named here, and selection state
is written only through this module's functions. The browser (``?u=``), the experiment (``?exp=``) and
the training job (``?job=``) live in the URL as well as the session: a page switch clears the URL's
parameters (the session keeps them) and a refresh starts a new session (the URL keeps them).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import streamlit as st

from lab.jobs import JobManager
from lab.runstore import RunRecord, RunStore

# st.session_state keys
OWNER = "owner"
EXPERIMENT = "experiment"
PENDING_EXPERIMENT = "pending_experiment"  # started, first run folder not written yet
INSPECT_INDEX = "inspect_index"  # the Feature space image panel's index field, also set by a click
SEEN_DONE = "seen-done-{job_id}"  # the live view has rerun the whole page once after this job ended

# st.query_params keys
URL_OWNER = "u"
URL_EXPERIMENT = "exp"
URL_JOB = "job"

EXAMPLE_RUNS = Path(__file__).resolve().parents[1] / "assets" / "example-runs"
VIEWABLE = ("finished", "stopped")


@st.cache_resource
def run_store() -> RunStore:
    """The app's runs folder ($LOSSLENS_RUNS_DIR or ./runs), seeded with the shipped example."""
    store = RunStore(os.environ.get("LOSSLENS_RUNS_DIR", "runs"))
    store.root.mkdir(parents=True, exist_ok=True)
    if EXAMPLE_RUNS.is_dir():
        for run_dir in EXAMPLE_RUNS.iterdir():
            if run_dir.is_dir() and not (store.root / run_dir.name).exists():
                shutil.copytree(run_dir, store.root / run_dir.name)
    return store


@st.cache_resource
def job_manager() -> JobManager:
    return JobManager(run_store())


def _valid_token(token: object) -> bool:
    return isinstance(token, str) and token.isalnum() and 8 <= len(token) <= 32


def owner_token() -> str:
    """This browser's id, kept in the session and in the URL, so both keep this browser's experiments
    and jobs."""
    token = st.session_state.get(OWNER)
    if not _valid_token(token):
        token = st.query_params.get(URL_OWNER, "")
    if not _valid_token(token):
        token = uuid.uuid4().hex[:16]
    st.session_state[OWNER] = token
    if st.query_params.get(URL_OWNER) != token:
        st.query_params[URL_OWNER] = token
    return token


def experiments() -> dict[str, list[RunRecord]]:
    """Experiments this browser may see (its own and the shared ones), newest first."""
    return run_store().experiments(owner=owner_token())


def pending_experiment() -> str | None:
    """An experiment this session has just started whose first run folder may not exist yet: the
    sidebar switches to it as soon as it does."""
    return st.session_state.get(PENDING_EXPERIMENT)


def selected_experiment() -> str | None:
    return st.session_state.get(EXPERIMENT)


def selected_runs(viewable_only: bool = True) -> list[RunRecord]:
    """The selected experiment's runs, fresh from disk; by default only those with results."""
    experiment = selected_experiment()
    if experiment is None:
        return []
    records = experiments().get(experiment, [])
    if viewable_only:
        records = [r for r in records if r.state in VIEWABLE and r.config is not None and r.error is None]
    return records


def preselected_experiment(groups: dict[str, list[RunRecord]]) -> str | None:
    """Which of ``groups`` the experiment choice opens on: a pending experiment whose first run folder now
    exists (it stops being pending), else the URL's, else the session's, else the newest; None (and
    nothing selected) when there are none."""
    if not groups:
        st.session_state[EXPERIMENT] = None
        return None
    pending = pending_experiment()
    if pending in groups:
        del st.session_state[PENDING_EXPERIMENT]
        st.query_params[URL_EXPERIMENT] = pending
    wanted = st.query_params.get(URL_EXPERIMENT)
    if wanted in groups:
        return wanted
    current = selected_experiment()
    return current if current in groups else next(iter(groups))


def select_experiment(experiment: str) -> None:
    st.session_state[EXPERIMENT] = experiment
    if pending_experiment() is None:  # while one is pending the URL keeps naming it, so a refresh still finds it
        st.query_params[URL_EXPERIMENT] = experiment


def forget_experiment() -> None:
    """Select nothing (the selected experiment was deleted)."""
    st.session_state[EXPERIMENT] = None
    st.query_params.pop(URL_EXPERIMENT, None)


def attached_job(manager: JobManager, owner: str) -> str:
    """The job the Train page shows: the URL's, else this browser's latest ("" when it has none)."""
    return st.query_params.get(URL_JOB) or next(reversed(manager.jobs_of(owner)), "")


def attach_job(job_id: str) -> None:
    """Keep ``job_id`` in the URL, so a refresh or a page switch re-attaches to it."""
    st.query_params[URL_JOB] = job_id


def start_pending(job_id: str, experiment: str) -> None:
    """Attach a just-submitted job and select its experiment, pending until its first run folder exists."""
    attach_job(job_id)
    st.query_params[URL_EXPERIMENT] = experiment
    st.session_state[EXPERIMENT] = experiment
    st.session_state[PENDING_EXPERIMENT] = experiment


def first_view_when_done(job_id: str) -> bool:
    """True once per session for a job that has ended (the live view then reruns the whole page)."""
    key = SEEN_DONE.format(job_id=job_id)
    if st.session_state.get(key):
        return False
    st.session_state[key] = True
    return True
