"""2-D projections of features or activations, UI-free: PCA, and UMAP with true progress.

UMAP is the slow one, and what users wait for the first time the app draws it:

* **Epochs.** UMAP runs 500 optimisation epochs on up to 10,000 points and 200 above; here it always
  runs :data:`UMAP_EPOCHS` = 200. Measured once on 10,000 and on 2,000 penultimate activations, that
  cut the time by more than half and by a quarter, and left the picture's trustworthiness unchanged
  (bench/RESULTS.md).
* **Compiling.** numba compiles UMAP's kernels on the first call in a process, about two thirds of a
  first projection's time. :func:`warm_up_umap` does it once, on a few hundred random points, so that
  :func:`umap` can report it as a step of its own instead of a stall in the middle of another.
* **Progress.** :func:`umap` reports each step to a ``progress(fraction, text)`` callback: compiling,
  the neighbour graph, then the epochs done as UMAP's own loop counts them (its progress bar, formatted
  as ``n/total`` into :class:`_EpochCounter`, at most four times a second), so the fraction shown is the
  share of epochs done, not a guess.
* **Neighbours.** For wide data the exact neighbour graph from :func:`lab.analysis.geometry.nearest_neighbours`
  (one matrix product per block) is handed to UMAP: its own approximate search was most of its time on
  10,000 points and finds only part of the true neighbours in 128 dimensions. Low-dimensional data keeps
  UMAP's own search: on an exact graph of points along a circle, UMAP's spectral initialisation
  converges far more slowly. Below :data:`UMAP_EXACT_FROM` points UMAP compares all pairs itself.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings

import numpy as np

from lab.analysis.geometry import TREE_MAX_DIM, nearest_neighbours
from lab.progress import Progress

log = logging.getLogger(__name__)

UMAP_EPOCHS = 200
UMAP_EXACT_FROM = 4096  # UMAP's own exact path below this many points
WARM_UP_POINTS = 300

_compiled = threading.Event()
_compiling = threading.Lock()


def pca(x: np.ndarray, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """PCA coordinates and the explained-variance ratio of each component."""
    from sklearn.decomposition import PCA

    n_components = min(n_components, x.shape[1], len(x))
    model = PCA(n_components=n_components, random_state=0)
    return model.fit_transform(np.asarray(x, dtype=np.float64)), model.explained_variance_ratio_


class _EpochCounter:
    """A file for UMAP's progress bar (a tqdm bar formatted ``n/total``) that passes each count on.

    tqdm writes while holding its process-wide lock and releases it only when the write returns, so
    nothing may leave :meth:`write` by an exception: a Streamlit rerun or stop, raised inside the page's
    progress call, would keep that lock held and hang every later bar in the server. Whatever the
    callback raises is kept, reporting stops, and :meth:`raise_kept` raises it once UMAP has returned."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.kept: BaseException | None = None

    def write(self, text: str) -> None:
        counts = re.findall(r"(\d+)/(\d+)", text)
        if counts and self.kept is None:
            done, total = (int(n) for n in counts[-1])
            try:
                self.progress(done / max(total, 1), f"epoch {done} of {total}")
            except BaseException as err:  # noqa: BLE001 (raised again by raise_kept, outside tqdm's lock)
                self.kept = err

    def flush(self) -> None:
        pass

    def raise_kept(self) -> None:
        if self.kept is not None:
            raise self.kept


def _fit(x: np.ndarray, seed: int, metric: str, n_components: int, progress: Progress | None) -> np.ndarray:
    import umap as umap_module

    x = np.asarray(x, dtype=np.float32)
    n_neighbors = min(15, len(x) - 1)
    knn: tuple = (None, None, None)  # UMAP's own neighbour search
    if x.shape[1] > TREE_MAX_DIM and len(x) >= UMAP_EXACT_FROM:
        indices, distances = nearest_neighbours(x, n_neighbors, metric, include_self=True)
        knn = (indices, distances.astype(np.float32), None)
    bar: dict = {"disable": True}
    counter = None
    if progress is not None:
        progress(0.0, "building the neighbour graph")
        counter = _EpochCounter(progress)
        bar = {"disable": False, "file": counter, "bar_format": "{n}/{total}", "mininterval": 0.25}
    reducer = umap_module.UMAP(
        n_components=n_components,
        random_state=seed,
        metric=metric,
        n_neighbors=n_neighbors,
        precomputed_knn=knn,
        n_epochs=UMAP_EPOCHS,
        tqdm_kwds=bar,
    )
    with warnings.catch_warnings():  # said on every call: a fixed seed runs single-threaded; no transform()
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)
        coords = reducer.fit_transform(x)
    if counter is not None:
        counter.raise_kept()
    return coords


def umap_compiled() -> bool:
    """Whether this process has compiled UMAP's kernels (a projection or :func:`warm_up_umap` ran)."""
    return _compiled.is_set()


def warm_up_umap() -> None:
    """Compile UMAP's kernels on a few random points, once per process (later calls return at once, a
    concurrent one waits for the first)."""
    with _compiling:
        if _compiled.is_set():
            return
        points = np.random.default_rng(0).normal(size=(WARM_UP_POINTS, 8))
        for metric in ("euclidean", "cosine"):  # each metric compiles its own distance kernels
            _fit(points, 0, metric, 2, None)
        _compiled.set()
        log.info("compiled UMAP's kernels")


def umap(
    x: np.ndarray, n_components: int = 2, seed: int = 0, metric: str = "euclidean", progress: Progress | None = None
) -> np.ndarray:
    """UMAP coordinates (``metric``: euclidean or cosine); each step is reported to ``progress``."""
    if progress is not None and not umap_compiled():
        progress(0.0, "compiling UMAP (once per server)")
    warm_up_umap()
    coords = _fit(x, seed, metric, n_components, progress)
    if progress is not None:
        progress(1.0, "done")
    return coords
