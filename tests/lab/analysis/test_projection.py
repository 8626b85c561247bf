"""Projections: UMAP reports what it does and how many epochs it has done, and the app keeps every
projection so that it is computed once."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lab.analysis import projection
from ui import loaders


def clusters(n: int = 600, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points around five well-separated centres, and which centre each belongs to."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=6.0, size=(5, dim))
    labels = rng.integers(0, 5, n)
    return (centers[labels] + rng.normal(size=(n, dim))).astype(np.float32), labels


def test_umap_reports_each_step_and_every_epoch_it_has_done():
    reports: list[tuple[float, str]] = []
    coords = projection.umap(clusters()[0], progress=lambda fraction, text: reports.append((fraction, text)))
    assert coords.shape == (600, 2) and np.isfinite(coords).all()
    texts = [text for _, text in reports]
    assert "building the neighbour graph" in texts
    epochs = [text for _, text in reports if text.startswith("epoch ")]
    assert epochs[0] == f"epoch 0 of {projection.UMAP_EPOCHS}"
    assert epochs[-1] == f"epoch {projection.UMAP_EPOCHS} of {projection.UMAP_EPOCHS}"
    done = [int(text.split()[1]) for text in epochs]
    assert done == sorted(done) and len(set(done)) == len(done)  # as UMAP's own loop counts them
    fractions = [fraction for fraction, _ in reports]
    assert fractions == sorted(fractions) and reports[-1] == (1.0, "done")
    assert projection.umap_compiled()
    again: list[str] = []
    projection.umap(clusters(seed=1)[0], progress=lambda fraction, text: again.append(text))
    assert "compiling UMAP (once per server)" not in again  # compiled once per process


class Rerun(BaseException):
    """What Streamlit raises inside a progress call when the user changes a widget mid-computation."""


def test_a_rerun_raised_by_the_progress_bar_ends_the_projection_and_leaves_no_lock_held():
    def interrupted(fraction: float, text: str) -> None:
        if text.startswith("epoch "):
            raise Rerun

    with pytest.raises(Rerun):
        projection.umap(clusters()[0], progress=interrupted)
    finished = []  # tqdm's lock is process-wide: another session's projection must not wait on it
    other = threading.Thread(
        target=lambda: finished.append(projection.umap(clusters(seed=2)[0], progress=lambda fraction, text: None))
    )
    other.start()
    other.join(timeout=120)
    assert finished and finished[0].shape == (600, 2)


def test_umap_is_reproducible_and_keeps_clusters_apart():
    x, labels = clusters()
    first, second = projection.umap(x), projection.umap(x)
    np.testing.assert_array_equal(first, second)
    distances = np.linalg.norm(first[:, None] - first[None], axis=-1)
    same = labels[:, None] == labels[None]
    assert distances[same].mean() * 3 < distances[~same].mean()


def test_the_app_computes_a_projection_once_and_keeps_it_in_memory_and_on_disk(digits_run, tmp_path, monkeypatch):
    _, record, _ = digits_run
    monkeypatch.setenv(loaders.CACHE_DIR, str(tmp_path))
    st.cache_resource.clear()
    st.cache_data.clear()
    reports: list[str] = []
    coords, note = loaders.projection(record, "penultimate", "UMAP", lambda fraction, text: reports.append(text))
    assert reports and note == "UMAP (euclidean)"
    assert coords.shape == (len(loaders.run_arrays(record).snapshot_indices), 2)
    assert list((tmp_path / "projections").iterdir()), "nothing was written to the projection cache"
    reports.clear()
    again, _ = loaders.projection(record, "penultimate", "UMAP", lambda fraction, text: reports.append(text))
    assert not reports and again is coords  # kept in memory
    st.cache_resource.clear()  # a restarted server: read from disk, not computed
    from_disk, _ = loaders.projection(record, "penultimate", "UMAP", lambda fraction, text: reports.append(text))
    assert not reports
    np.testing.assert_array_equal(from_disk, coords)


def progress_script() -> None:
    import streamlit as st

    from ui import layout

    def work(item: int, report) -> int:
        if item % 2:
            report(0.5, "half way")
        return item * 10

    st.session_state["results"] = layout.each_with_progress([1, 2, 3], str, work)


def test_one_progress_bar_over_all_items_gone_when_done():
    app = AppTest.from_function(progress_script).run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.session_state["results"] == [10, 20, 30]
    assert not app.get("progress")
