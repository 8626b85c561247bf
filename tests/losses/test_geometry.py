"""best_spacing_degrees: the closed forms, the Tammes table and the numerical fallback."""

from __future__ import annotations

import math

import pytest

from losses.geometry import TAMMES_3D_DEGREES, best_spacing_degrees, repulsion_spacing_degrees


def test_two_dimensions_is_the_regular_polygon() -> None:
    assert best_spacing_degrees(10, 2) == pytest.approx(36.0)
    assert best_spacing_degrees(2, 2) == 180.0
    assert best_spacing_degrees(3, 2) == pytest.approx(120.0)
    assert best_spacing_degrees(100, 2) == pytest.approx(3.6)


def test_up_to_one_more_class_than_dimensions_is_the_regular_simplex() -> None:
    assert best_spacing_degrees(4, 3) == pytest.approx(109.4712206)
    assert best_spacing_degrees(10, 9) == pytest.approx(math.degrees(math.acos(-1 / 9)))
    assert best_spacing_degrees(10, 512) == pytest.approx(96.37937, abs=1e-4)


def test_up_to_twice_the_dimensions_is_a_right_angle() -> None:
    assert best_spacing_degrees(5, 3) == 90.0
    assert best_spacing_degrees(6, 3) == 90.0
    assert best_spacing_degrees(16, 8) == 90.0


def test_three_dimensions_uses_the_tammes_solutions() -> None:
    assert best_spacing_degrees(10, 3) == pytest.approx(66.1468, abs=1e-3)
    assert best_spacing_degrees(12, 3) == pytest.approx(math.degrees(math.atan(2)))  # icosahedron
    values = [best_spacing_degrees(k, 3) for k in range(2, 25)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False)), "more classes can never be spread wider"


@pytest.mark.parametrize("n_classes", [7, 10, 12, 14])
def test_the_numerical_optimiser_comes_close_to_the_known_solutions_but_never_beats_them(n_classes: int) -> None:
    found = repulsion_spacing_degrees(n_classes, 3)
    assert TAMMES_3D_DEGREES[n_classes] - 0.1 < found <= TAMMES_3D_DEGREES[n_classes] + 1e-6


def test_the_numerical_optimiser_finds_the_closed_forms() -> None:
    assert repulsion_spacing_degrees(7, 2) == pytest.approx(360 / 7, abs=0.05)
    assert repulsion_spacing_degrees(5, 4) == pytest.approx(math.degrees(math.acos(-1 / 4)), abs=0.05)


def test_beyond_the_table_the_optimiser_answers_deterministically() -> None:
    found = best_spacing_degrees(30, 3)
    assert found == pytest.approx(38.5971, abs=0.3)  # best known packing of 30 points
    repulsion_spacing_degrees.cache_clear()
    assert best_spacing_degrees(30, 3) == found
    assert 0 < best_spacing_degrees(100, 3) < found


def test_degenerate_inputs() -> None:
    assert best_spacing_degrees(1, 2) == 180.0
    assert best_spacing_degrees(2, 1) == 180.0
    assert best_spacing_degrees(3, 1) == 0.0
    with pytest.raises(ValueError):
        best_spacing_degrees(0, 2)
    with pytest.raises(ValueError):
        best_spacing_degrees(10, 0)
