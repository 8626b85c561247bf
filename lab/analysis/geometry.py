"""Feature-geometry analysis of a finished run: angles, neighbours, summary metrics. No UI.

Definitions used everywhere in the app (and in bench/quality.py):

* **class direction**: the loss head's class vector (classifier weight row, or centre) when it has
  one; otherwise the mean direction of the class's unit-normalised features.
* **own angle**: angle between a feature and its own class direction; **nearest other angle**: the
  smallest angle to any other class direction. A sample is **beyond the margin** m when
  ``nearest_other - own >= m``.
* **within-class angle**: angle between a feature and the mean direction of its class's features;
  **between-class angle**: angle between two classes' mean feature directions. The summary reports
  the mean of the first and the minimum of the second.
* **class spread**: the mean distance of a feature to its class's mean feature over the mean distance
  from a class's mean to the nearest other class's mean (lengths count: the figure for losses that
  shape distances, not only angles).
* **cosine silhouette**: scikit-learn's silhouette score with cosine distance (on at most 2,000
  points); **k-NN accuracy**: leave-one-out 5-nearest-neighbour accuracy under cosine similarity on
  the test features.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from losses.geometry import best_spacing_degrees

KNN_K = 5
KNN_BLOCK = 1024
TREE_MAX_DIM = 4
SILHOUETTE_POINTS = 2000


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), the F.normalize convention."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def angles_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles in degrees between every row of ``a`` and every row of ``b`` (len(a) x len(b))."""
    cosine = np.clip(unit_rows(a) @ unit_rows(b).T, -1.0, 1.0)
    return np.degrees(np.arccos(cosine))


def class_mean_directions(features: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Unit mean direction of each class's unit features (a zero row for an absent class)."""
    unit = unit_rows(features)
    sums = np.zeros((n_classes, unit.shape[1]))
    np.add.at(sums, labels, unit)
    return unit_rows(sums)


@dataclasses.dataclass(frozen=True)
class AngleStats:
    """Per-sample and per-pair angles (degrees) of one run's test features."""

    own: np.ndarray
    nearest_other: np.ndarray
    within_pairs: np.ndarray
    between_pairs: np.ndarray
    direction_angles: np.ndarray
    uses_head_directions: bool

    def share_beyond_margin(self, margin_deg: float) -> float:
        return float(np.mean(self.nearest_other - self.own >= margin_deg))


def _sample_pairs(n: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    i = rng.integers(0, n, size=count)
    j = rng.integers(0, n - 1, size=count)
    j = j + (j >= i)  # never pair a sample with itself
    return i, j


def own_and_nearest_other(
    features: np.ndarray, labels: np.ndarray, n_classes: int, directions: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Each feature's angle to its own class direction and to the nearest other one (degrees), the class
    directions used, and whether they are the head's (else the classes' mean directions)."""
    labels = np.asarray(labels)
    uses_head = directions is not None and len(directions) == n_classes
    directions = np.asarray(directions) if uses_head else class_mean_directions(features, labels, n_classes)
    to_classes = angles_deg(features, directions)
    own = to_classes[np.arange(len(labels)), labels]
    to_classes[np.arange(len(labels)), labels] = np.inf
    return own, to_classes.min(axis=1), directions, uses_head


def share_beyond_margin(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    directions: np.ndarray | None,
    margin_deg: float = 10.0,
) -> float:
    """The share of samples at least ``margin_deg`` closer in angle to their own class direction than to
    the nearest other one (see the module's definitions)."""
    own, nearest_other, _, _ = own_and_nearest_other(features, labels, n_classes, directions)
    return float(np.mean(nearest_other - own >= margin_deg))


def class_spread(features: np.ndarray, labels: np.ndarray) -> float:
    """How spread out the classes are for how far apart they lie, by distance rather than angle: the mean
    distance of a feature to its class's mean feature over the mean distance from a class's mean to the
    nearest other class's mean. Scale-free; lower means tighter classes farther apart (center loss and
    LMD ask for it). NaN with fewer than two classes."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    present = np.unique(labels)
    if len(present) < 2:
        return float("nan")
    means = np.stack([features[labels == c].mean(axis=0) for c in present])
    index = np.searchsorted(present, labels)
    spread = float(np.linalg.norm(features - means[index], axis=1).mean())
    gaps = np.linalg.norm(means[:, None, :] - means[None, :, :], axis=2)
    nearest = float(nearest_off_diagonal(gaps).mean())
    return spread / nearest if nearest > 0 else float("inf")


def angle_stats(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    directions: np.ndarray | None,
    pairs: int = 20000,
    seed: int = 0,
) -> AngleStats:
    """Angles of each feature to the class directions, and a seeded sample of pairwise angles."""
    labels = np.asarray(labels)
    own, nearest_other, directions, uses_head = own_and_nearest_other(features, labels, n_classes, directions)
    rng = np.random.default_rng(seed)
    i, j = _sample_pairs(len(labels), pairs, rng)
    unit = unit_rows(features)
    pair_angles = np.degrees(np.arccos(np.clip(np.sum(unit[i] * unit[j], axis=1), -1.0, 1.0)))
    same = labels[i] == labels[j]
    return AngleStats(
        own, nearest_other, pair_angles[same], pair_angles[~same], angles_deg(directions, directions), uses_head
    )


def nearest_off_diagonal(square: np.ndarray) -> np.ndarray:
    """Each row's smallest entry outside the diagonal: a class direction's angle to its nearest other one."""
    return (square + np.diag(np.full(len(square), np.inf))).min(axis=1)


def min_off_diagonal(square: np.ndarray) -> float:
    return float(nearest_off_diagonal(square).min()) if len(square) > 1 else float("nan")


SAME_RAY_DEGREES = 2.0


def shared_directions(directions: np.ndarray, tolerance_deg: float = SAME_RAY_DEGREES) -> list[list[int]]:
    """Groups of classes whose directions lie within ``tolerance_deg`` of each other (chained: 1 near 2
    and 2 near 7 make one group), each sorted, groups of two or more only, in order of their first class.
    On the unit circle or sphere such classes fall on one ray and look merged; they may still differ in
    length (the raw features show it)."""
    directions = np.asarray(directions, dtype=np.float64)
    nonzero = np.linalg.norm(directions, axis=1) > 0
    close = (angles_deg(directions, directions) <= tolerance_deg) & nonzero[:, None] & nonzero[None, :]
    group = list(range(len(directions)))

    def root(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(close, k=1)), strict=True):
        group[root(int(i))] = root(int(j))
    members: dict[int, list[int]] = {}
    for i in range(len(directions)):
        members.setdefault(root(i), []).append(i)
    return sorted((sorted(m) for m in members.values() if len(m) > 1), key=lambda m: m[0])


def nearest_neighbours(
    x: np.ndarray, k: int, metric: str = "cosine", include_self: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest neighbours of every row of ``x`` among the rows of ``x``, nearest first:
    ``(indices, distances)``, each len(x) x k. ``metric``: ``cosine`` (distance 1 - cosine similarity)
    or ``euclidean``. Without ``include_self`` a row is never its own neighbour (an identical copy is).

    Low-dimensional features (at most :data:`TREE_MAX_DIM` dimensions) go through a k-d tree on unit rows (for
    unit vectors, euclidean order is cosine order) instead of comparing every pair; wider data is compared in
    blocks with one matrix product each.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    k = min(k, n if include_self else n - 1)
    points = unit_rows(x) if metric == "cosine" else x
    extra = 0 if include_self else 1
    if x.shape[1] <= TREE_MAX_DIM:
        from sklearn.neighbors import KDTree

        distances, indices = KDTree(points).query(points, k=min(k + extra, n))
    else:
        block = torch.from_numpy(points).float()
        squared = (block * block).sum(1)
        parts = []
        for start in range(0, n, KNN_BLOCK):
            stop = min(start + KNN_BLOCK, n)
            gram = block[start:stop] @ block.T
            gap = (squared[start:stop, None] + squared[None, :] - 2 * gram).clamp_(min=0)  # squared distances
            rows = torch.arange(stop - start)
            gap[rows, rows + start] = 0.0 if include_self else np.inf
            parts.append(gap.topk(min(k + extra, n), dim=1, largest=False))
        distances = torch.cat([p.values for p in parts]).double().sqrt().numpy()
        indices = torch.cat([p.indices for p in parts]).numpy()
    if not include_self:  # drop each row itself (not merely the first hit: an identical copy may come first)
        own = indices == np.arange(n)[:, None]
        own[~own.any(axis=1), -1] = True  # rows whose own index was not returned drop their farthest hit
        keep = ~own
        indices = indices[keep].reshape(n, -1)[:, :k]
        distances = distances[keep].reshape(n, -1)[:, :k]
    if metric == "cosine":
        distances = distances**2 / 2  # unit rows: |a - b|^2 = 2 - 2 cos
    return indices.astype(np.int64), distances


def knn_accuracy(features: np.ndarray, labels: np.ndarray, k: int = KNN_K) -> float:
    """Leave-one-out k-NN accuracy under cosine similarity (majority vote, ties to the nearest)."""
    labels = np.asarray(labels).astype(np.int64)
    neighbours, _ = nearest_neighbours(features, k, "cosine")
    votes = np.zeros((len(labels), int(labels.max()) + 1))
    weights = np.linspace(1.0, 0.999, neighbours.shape[1])  # the nearest breaks ties
    np.add.at(votes, (np.arange(len(labels))[:, None], labels[neighbours]), weights)
    return float(np.mean(votes.argmax(1) == labels))


def cosine_silhouette(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    from sklearn.metrics import silhouette_score

    if len(np.unique(labels)) < 2:
        return float("nan")
    size = min(SILHOUETTE_POINTS, len(labels))
    return float(silhouette_score(unit_rows(features), labels, metric="cosine", sample_size=size, random_state=seed))


def class_angles(features: np.ndarray, labels: np.ndarray, n_classes: int) -> dict[str, float]:
    """The mean within-class angle and the minimum between-class angle (degrees): the summary's cheap
    figures, which the experiment summary (lab.analysis.seed_stats) reads for every run."""
    labels = np.asarray(labels)
    means = class_mean_directions(features, labels, n_classes)
    present = np.unique(labels)
    within = angles_deg(features, means)[np.arange(len(labels)), labels]
    return {
        "mean_within_class_angle": float(within.mean()),
        "min_between_class_angle": min_off_diagonal(angles_deg(means[present], means[present])),
    }


def summary(
    features: np.ndarray,
    labels: np.ndarray,
    logits: np.ndarray,
    directions: np.ndarray | None,
    margin_deg: float = 10.0,
) -> dict[str, float]:
    """The per-run numbers of the Compare table (angles in degrees)."""
    labels = np.asarray(labels)
    n_classes = logits.shape[1]
    stats = angle_stats(features, labels, n_classes, directions)
    return {
        "test_acc": float(np.mean(np.argmax(logits, axis=1) == labels)),
        **class_angles(features, labels, n_classes),
        "min_class_direction_angle": min_off_diagonal(stats.direction_angles),
        "best_possible_spacing": best_spacing_degrees(n_classes, features.shape[1]),
        "share_beyond_margin": stats.share_beyond_margin(margin_deg),
        "cosine_silhouette": cosine_silhouette(features, labels),
        "knn_accuracy": knn_accuracy(features, labels),
    }
