"""How far apart K class directions can be in D dimensions: the room a margin has to fit into.

:func:`best_spacing_degrees` is the largest possible minimum angle between ``n_classes`` unit
vectors in ``dim`` dimensions, the best any classifier could do at spreading its classes evenly:

* 2-D: the regular polygon, 360/K degrees (180 for K = 2).
* K <= D + 1: the regular simplex, arccos(-1/(K - 1)) (109.47 degrees for 4 classes in 3-D).
* K <= 2D: 90 degrees, e.g. the axes and their negatives (Rankin's bound says no better exists).
* 3-D, K <= 24: the known solutions of the Tammes problem (66.15 degrees for 10 classes).
* Otherwise: a deterministic numerical repulsion optimisation, cached; a good lower bound on the
  optimum, typically within a fraction of a degree of it.

The margin heads use it to tell when a margin cannot be met (``feasibility_warnings``) and the app
shows it on the Angles page next to the measured angles between class directions.
"""

from __future__ import annotations

import functools
import math

import numpy as np

# Tammes problem: best known minimum angle (degrees) for N points on the 2-sphere, from N = 7 (fewer are
# simplex or 90-degree cases); proven optimal for N <= 14 and N = 24. Hars, "Numerical solutions of the
# Tammes problem for up to 60 points" (2020); OEIS A340918 (N = 10: 1.1544798334 rad), A383860 (N = 14).
TAMMES_3D_DEGREES: dict[int, float] = {
    7: 77.8695421,
    8: 74.8584922,
    9: 70.5287794,
    10: 66.1468220,
    11: 63.4349488,
    12: 63.4349488,
    13: 57.1367031,
    14: 55.6705700,
    15: 53.6578501,
    16: 52.2443957,
    17: 51.0903285,
    18: 49.5566548,
    19: 47.6919141,
    20: 47.4310362,
    21: 45.6132231,
    22: 44.7401612,
    23: 43.7099642,
    24: 43.6907671,
}


def best_spacing_degrees(n_classes: int, dim: int) -> float:
    """The largest possible minimum angle, in degrees, between ``n_classes`` unit vectors in ``dim``-D.

    One class has no neighbour and gets 180 degrees.
    """
    if n_classes < 1 or dim < 1:
        raise ValueError(f"need at least one class and one dimension, got n_classes={n_classes}, dim={dim}")
    if n_classes <= 2:
        return 180.0
    if dim == 1:
        return 0.0
    if dim == 2:
        return 360.0 / n_classes
    if n_classes <= dim + 1:
        return math.degrees(math.acos(-1.0 / (n_classes - 1)))
    if n_classes <= 2 * dim:
        return 90.0
    if dim == 3 and n_classes in TAMMES_3D_DEGREES:
        return TAMMES_3D_DEGREES[n_classes]
    return repulsion_spacing_degrees(n_classes, dim)


def best_spacing_is_known(n_classes: int, dim: int) -> bool:
    """Whether :func:`best_spacing_degrees` is a known optimum (a closed form or the Tammes table) rather
    than the numerical estimate, which the true optimum may exceed by a fraction of a degree."""
    return n_classes <= 2 or dim <= 2 or n_classes <= 2 * dim or (dim == 3 and n_classes in TAMMES_3D_DEGREES)


@functools.lru_cache(maxsize=64)
def repulsion_spacing_degrees(n_classes: int, dim: int, restarts: int = 2, iterations: int = 1000) -> float:
    """Minimum pairwise angle of ``n_classes`` points spread on the unit sphere of R^dim by Adam steps
    down a soft maximum of the pairwise cosines, sharpened as it goes (log-sum-exp with temperature
    1/10 to 1/1000). Seeded, so deterministic; the best of ``restarts`` random starts, run side by side."""
    points = np.random.default_rng(0).standard_normal((restarts, n_classes, dim))
    first, second = np.zeros_like(points), np.zeros_like(points)
    beta1, beta2 = 0.9, 0.999
    for step in range(1, iterations + 1):
        sharpness = 10.0 * 100.0 ** (step / iterations)
        norms = np.linalg.norm(points, axis=2, keepdims=True)
        unit = points / norms
        scaled = sharpness * _pair_cosines(unit, exclude=-np.inf)
        weights = np.exp(scaled - scaled.max(axis=(1, 2), keepdims=True))
        weights /= weights.sum(axis=(1, 2), keepdims=True)  # softmax over all pairs
        grad = (weights + weights.transpose(0, 2, 1)) @ unit  # gradient of the soft maximum wrt unit vectors
        grad = (grad - (grad * unit).sum(axis=2, keepdims=True) * unit) / norms  # ... and wrt the points
        first = beta1 * first + (1 - beta1) * grad
        second = beta2 * second + (1 - beta2) * grad**2
        step_size = 0.02 * 0.01 ** (step / iterations)
        points -= step_size * (first / (1 - beta1**step)) / (np.sqrt(second / (1 - beta2**step)) + 1e-8)
    unit = points / np.linalg.norm(points, axis=2, keepdims=True)
    largest_cos = _pair_cosines(unit, exclude=-2.0).max(axis=(1, 2)).min()
    return math.degrees(math.acos(min(1.0, float(largest_cos))))


def _pair_cosines(unit: np.ndarray, exclude: float) -> np.ndarray:
    """R x K x K cosines between the K unit vectors of each of R configurations; self-pairs set to ``exclude``."""
    cosines = unit @ unit.transpose(0, 2, 1)
    cosines[:, np.eye(unit.shape[1], dtype=bool)] = exclude
    return cosines
