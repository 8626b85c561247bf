"""Streamlit glue shared by the pages: the run store, the job manager, who this browser is, which
experiment is selected, and cached loading and analysis of runs. Pages call these; nothing here draws.

Caching: run files are read once per (run, last status change) with ``st.cache_data``; trained
models are kept with ``st.cache_resource`` together with a lock (Grad-CAM hooks mutate the model);
UMAP results also persist to disk, so a restarted app does not pay for them again.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
import uuid
from pathlib import Path

import numpy as np
import streamlit as st

from lab import analysis
from lab.config import RunConfig
from lab.data import Dataset, load_dataset
from lab.jobs import JobManager
from lab.restore import load_trained
from lab.runstore import RunRecord, RunStore, RunStoreError

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
    """This browser's id. Kept in the session (page switches clear the URL's parameters) and in the
    URL as ``?u=`` (a refresh starts a new session), so both keep this browser's experiments and jobs."""
    token = st.session_state.get("owner")
    if not _valid_token(token):
        token = st.query_params.get("u", "")
    if not _valid_token(token):
        token = uuid.uuid4().hex[:16]
    st.session_state["owner"] = token
    if st.query_params.get("u") != token:
        st.query_params["u"] = token
    return token


def experiments() -> dict[str, list[RunRecord]]:
    """Experiments this browser may see (its own and the shared ones), newest first."""
    return run_store().experiments(owner=owner_token())


def experiment_label(experiment: str, records: list[RunRecord]) -> str:
    config = next((r.config for r in records if r.config is not None), None)
    if config is None:
        return experiment
    stamp = experiment[:15] if experiment[:8].isdigit() else ""
    when = f"{stamp[6:8]}/{stamp[4:6]} {stamp[9:11]}:{stamp[11:13]}" if stamp else ""
    example = "example · " if experiment.startswith("example") and not any(r.owner for r in records) else ""
    count = f"{len(records)} loss" if len(records) == 1 else f"{len(records)} losses"
    return f"{example}{config.dataset} · {config.feat_dim}-D · {count} {when}".strip()


PENDING_EXPERIMENT = "pending_experiment"


def pending_experiment() -> str | None:
    """An experiment this session has just started whose first run folder may not exist yet: the
    sidebar switches to it as soon as it does."""
    return st.session_state.get(PENDING_EXPERIMENT)


def selected_experiment() -> str | None:
    return st.session_state.get("experiment")


def selected_runs(viewable_only: bool = True) -> list[RunRecord]:
    """The selected experiment's runs, fresh from disk; by default only those with results."""
    experiment = selected_experiment()
    if experiment is None:
        return []
    records = experiments().get(experiment, [])
    if viewable_only:
        records = [r for r in records if r.state in VIEWABLE and r.config is not None and r.error is None]
    return records


def cache_key(record: RunRecord) -> tuple[str, str, float]:
    """Identifies a run's current files: its id and the time of its last status change."""
    return str(record.run_dir.parent), record.run_id, float(record.status.get("updated", 0.0))


@dataclasses.dataclass(frozen=True)
class RunArrays:
    """What the pages draw for one run, as numpy arrays."""

    features: np.ndarray
    labels: np.ndarray
    logits: np.ndarray
    directions: np.ndarray | None
    snapshot_indices: np.ndarray
    snapshots: np.ndarray
    penultimate: np.ndarray


@st.cache_data(show_spinner=False, max_entries=64)
def _run_arrays(root: str, run_id: str, updated: float) -> RunArrays:
    store = RunStore(root)
    features = {k: v.numpy() for k, v in store.load_features(run_id).items()}
    snapshots = store.load_snapshots(run_id)
    return RunArrays(
        features=features["test_features"],
        labels=features["test_labels"],
        logits=features["test_logits"],
        directions=features.get("class_directions"),
        snapshot_indices=features["snapshot_indices"],
        snapshots=snapshots["features"].numpy(),
        penultimate=features["penultimate"],
    )


def run_arrays(record: RunRecord) -> RunArrays:
    return _run_arrays(*cache_key(record))


@st.cache_resource(show_spinner=False, max_entries=4)
def dataset_for(name: str, data_root: str | None) -> Dataset:
    return load_dataset(name, data_root)


def dataset_of(record: RunRecord) -> Dataset:
    config: RunConfig = record.config
    return dataset_for(config.dataset, config.data_root)


@st.cache_resource(show_spinner=False, max_entries=24)
def _trained(root: str, run_id: str, updated: float) -> tuple:
    store = RunStore(root)
    record = store.load(run_id)
    model, head = load_trained(store, record, dataset_of(record))
    return model, head, threading.Lock()


def trained_model(record: RunRecord) -> tuple:
    """(model, head, lock) of a finished run, loaded once; hold the lock while using hooks."""
    return _trained(*cache_key(record))


@st.cache_data(show_spinner=False, max_entries=128)
def _angle_stats(
    key: tuple, features: np.ndarray, labels: np.ndarray, n_classes: int, directions: np.ndarray | None
) -> analysis.AngleStats:
    return analysis.angle_stats(features, labels, n_classes, directions)


def angle_stats(record: RunRecord, arrays: RunArrays) -> analysis.AngleStats:
    return _angle_stats(cache_key(record), arrays.features, arrays.labels, arrays.logits.shape[1], arrays.directions)


@st.cache_data(show_spinner=False, max_entries=64)
def _summary(key: tuple, margin_deg: float) -> dict[str, float]:
    record = RunStore(key[0]).load(key[1])
    arrays = run_arrays(record)
    return analysis.summary(arrays.features, arrays.labels, arrays.logits, arrays.directions, margin_deg)


def summary(record: RunRecord, margin_deg: float = 10.0) -> dict[str, float]:
    return _summary(cache_key(record), margin_deg)


@st.cache_data(show_spinner=False, max_entries=64, persist="disk")
def _projection(key: tuple, source: str, method: str) -> tuple[np.ndarray, str]:
    record = RunStore(key[0]).load(key[1])
    arrays = run_arrays(record)
    data = arrays.penultimate if source == "penultimate" else arrays.features[arrays.snapshot_indices]
    if method == "PCA":
        coords, ratio = analysis.pca(data, 2)
        return coords, f"PC1 {ratio[0]:.0%} · PC2 {ratio[1]:.0%} of variance"
    metric = "cosine" if source == "features" else "euclidean"
    return analysis.umap(data, 2, metric=metric), f"UMAP ({metric})"


def projection(record: RunRecord, source: str, method: str) -> tuple[np.ndarray, str]:
    """2-D PCA or UMAP of the snapshot subset's features or penultimate activations."""
    return _projection(cache_key(record), source, method)


def loss_label(record: RunRecord) -> str:
    return record.config.loss if record.config else record.run_id


@st.cache_data(show_spinner=False, max_entries=256)
def _weights_problem(root: str, run_id: str, updated: float) -> str | None:
    """Why this run's weights cannot be used, or None; they are rebuilt into the model to be sure."""
    try:
        _trained(root, run_id, updated)
    except (RunStoreError, ValueError, KeyError, RuntimeError) as err:
        return str(err)
    return None


def loaded_runs() -> list[tuple[RunRecord, RunArrays]]:
    """The selected experiment's usable runs with their arrays. A run whose files are missing or
    corrupt gets one clear error line here and is left out; the other runs still show."""
    usable = []
    for record in selected_runs(viewable_only=False):
        if record.state not in VIEWABLE:
            continue
        try:
            if record.error:
                raise RunStoreError(record.error)
            arrays = run_arrays(record)
            problem = _weights_problem(*cache_key(record))
            if problem:
                raise RunStoreError(problem)
        except (RunStoreError, KeyError, ValueError) as err:
            st.error(
                f"**{loss_label(record)}** cannot be shown: {err}. The other runs are unaffected; delete or "
                f"retrain this one.",
                icon=":material/broken_image:",
            )
            continue
        usable.append((record, arrays))
    return usable


def loaded_runs_or_stop() -> list[tuple[RunRecord, RunArrays]]:
    """:func:`loaded_runs`; when there are none, a note saying where to go instead and the end of the page."""
    loaded = loaded_runs()
    if not loaded:
        st.info(
            "This experiment has no finished runs to show yet. Pick another experiment in the sidebar, or train "
            "one on the **Train** page.",
            icon=":material/info:",
        )
        st.stop()
    return loaded
