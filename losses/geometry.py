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

import torch

# Tammes problem, best known minimum angle (degrees) for N points on the 2-sphere; proven optimal for
# N <= 14 and N = 24. Hars, "Numerical solutions of the Tammes problem for up to 60 points" (2020);
# OEIS A340918 gives N = 10 (1.1544798334 rad), A383860 gives N = 14 (0.9716347429 rad).
TAMMES_3D_DEGREES: dict[int, float] = {
    5: 90.0,
    6: 90.0,
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


@functools.lru_cache(maxsize=64)
def repulsion_spacing_degrees(n_classes: int, dim: int, restarts: int = 4, iterations: int = 1500) -> float:
    """Minimum pairwise angle of ``n_classes`` points spread on the unit sphere of R^dim by gradient
    ascent on a soft minimum of the pairwise angles, sharpened as it goes. Seeded, so deterministic;
    the best of ``restarts`` random starts."""
    generator = torch.Generator().manual_seed(0)
    pairs = torch.triu_indices(n_classes, n_classes, offset=1)
    best = 0.0
    for _ in range(restarts):
        points = torch.randn(n_classes, dim, generator=generator, dtype=torch.float64).requires_grad_()
        optimiser = torch.optim.Adam([points], lr=0.02)
        for step in range(iterations):
            sharpness = 10.0 * 100.0 ** (step / iterations)  # 10 -> 1000: from spreading out to maximin
            unit = torch.nn.functional.normalize(points, dim=1)
            cosines = (unit @ unit.T)[pairs[0], pairs[1]]
            loss = torch.logsumexp(sharpness * cosines, dim=0) / sharpness  # soft maximum cosine
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if step % 100 == 99:
                optimiser.param_groups[0]["lr"] *= 0.8
        with torch.no_grad():
            unit = torch.nn.functional.normalize(points, dim=1)
            largest_cos = float((unit @ unit.T)[pairs[0], pairs[1]].max().clamp(-1.0, 1.0))
        best = max(best, math.degrees(math.acos(largest_cos)))
    return best
