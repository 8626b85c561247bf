"""The fast neighbour search behind k-NN accuracy and UMAP gives the same answers as comparing every pair."""

from __future__ import annotations

import numpy as np
import pytest

from lab.analysis import geometry


def brute_force(x: np.ndarray, k: int, metric: str, include_self: bool) -> tuple[np.ndarray, np.ndarray]:
    if metric == "cosine":
        unit = geometry.unit_rows(x)
        distance = 1.0 - unit @ unit.T
    else:
        distance = np.sqrt(np.maximum(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1), 0))
    if not include_self:
        np.fill_diagonal(distance, np.inf)
    order = np.argsort(distance, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(distance, order, axis=1)


@pytest.mark.parametrize("dim", [2, 3, 16])
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("include_self", [False, True])
def test_nearest_neighbours_match_brute_force(dim, metric, include_self):
    x = np.random.default_rng(dim).normal(size=(300, dim))
    indices, distances = geometry.nearest_neighbours(x, 7, metric, include_self=include_self)
    expected_indices, expected_distances = brute_force(x, 7, metric, include_self)
    assert indices.shape == distances.shape == (300, 7)
    np.testing.assert_allclose(distances, expected_distances, atol=1e-4)
    assert np.mean(indices == expected_indices) > 0.99  # only exact ties may order differently
    if include_self:
        assert np.all(indices[:, 0] == np.arange(300))
    else:
        assert not np.any(indices == np.arange(300)[:, None])


def test_an_identical_copy_is_a_neighbour_but_a_row_never_is_its_own():
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    indices, distances = geometry.nearest_neighbours(x, 2, "cosine")
    assert indices[0, 0] == 1 and indices[1, 0] == 0
    assert distances[0, 0] == pytest.approx(0.0)
    assert not np.any(indices == np.arange(4)[:, None])


@pytest.mark.parametrize("dim", [2, 3, 16])
def test_knn_accuracy_matches_a_brute_force_vote(dim):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=400)
    features = rng.normal(size=(400, dim)) + 1.5 * np.eye(5, dim)[labels]
    neighbours, _ = brute_force(features, geometry.KNN_K, "cosine", include_self=False)
    votes = np.zeros((400, 5))
    np.add.at(votes, (np.arange(400)[:, None], labels[neighbours]), np.linspace(1.0, 0.999, geometry.KNN_K))
    expected = float(np.mean(votes.argmax(1) == labels))
    assert geometry.knn_accuracy(features, labels) == pytest.approx(expected, abs=1 / 400)


def test_shared_directions_groups_classes_on_one_ray_whatever_their_length():
    angles = np.radians([0.0, 1.0, 90.0, 180.0, 181.5, 182.9, 270.0])
    directions = np.stack([np.cos(angles), np.sin(angles)], axis=1) * np.array([1, 5, 1, 2, 1, 3, 1])[:, None]
    assert geometry.shared_directions(directions) == [[0, 1], [3, 4, 5]]  # 3-4 and 4-5 chain into one group
    assert geometry.shared_directions(directions, tolerance_deg=0.5) == []


def test_shared_directions_ignores_a_class_without_a_direction():
    directions = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    assert geometry.shared_directions(directions) == []
