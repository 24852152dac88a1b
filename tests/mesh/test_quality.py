"""Quality measures against analytic values, and defect detection."""

import numpy as np
import pytest

from meshsim.mesh import Mesh, defects, quality


def test_regular_elements_score_one_and_right_angles_are_known():
    tri = Mesh(np.array([[0, 0], [1, 0], [0.5, np.sqrt(3) / 2]]), np.array([[0, 1, 2]]), "triangle")
    q = quality(tri)
    assert q["measure"][0] == pytest.approx(np.sqrt(3) / 4)
    assert q["radius_ratio"][0] == pytest.approx(1) and q["aspect_ratio"][0] == pytest.approx(1)
    assert q["min_angle"][0] == pytest.approx(60)
    tet = Mesh(np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1.0]]), np.array([[0, 1, 2, 3]]), "tetra")
    q = quality(tet)
    assert abs(q["measure"][0]) == pytest.approx(8 / 3)
    assert q["radius_ratio"][0] == pytest.approx(1) and q["aspect_ratio"][0] == pytest.approx(1)
    assert q["min_angle"][0] == pytest.approx(np.degrees(np.arccos(1 / 3)))  # dihedral angle 70.53 deg
    corner = Mesh(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]]), np.array([[0, 1, 2, 3]]), "tetra")
    q = quality(corner)
    assert q["measure"][0] == pytest.approx(1 / 6) and q["min_angle"][0] == pytest.approx(
        np.degrees(np.arccos(1 / np.sqrt(3)))
    )
    r, big_r = 1 / (3 + np.sqrt(3)), np.sqrt(3) / 2  # inradius, circumradius
    assert q["radius_ratio"][0] == pytest.approx(3 * r / big_r)


def test_defects_are_found_and_located():
    points = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [2, 2], [1, 1 + 1e-13], [3, 3], [4, 4]], float)
    cells = np.array([[0, 1, 2], [1, 2, 3], [3, 5, 2], [3, 6, 7], [0, 0, 1]])  # cell 1 is clockwise
    d = defects(Mesh(points, cells, "triangle"))
    assert d["inverted"] == 1 and d["first_inverted"] == 1
    # cell 2 collapses onto the duplicate node 5, cell 3 is collinear, cell 4 repeats a node
    assert d["degenerate"] == 3 and d["first_degenerate"] == 2
    assert d["duplicate_nodes"] == 1 and d["first_duplicate_nodes"] == 5
    assert d["unreferenced_nodes"] == 1 and d["first_unreferenced_nodes"] == 4


def test_non_manifold_and_open_surface_edges():
    # three triangles sharing edge 0-1 (a "book"), in 3D
    points = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, -1, 0.0]])
    d = defects(Mesh(points, np.array([[0, 1, 2], [0, 1, 3], [0, 1, 4]]), "triangle"))
    assert d["non_manifold_edges"] == 1 and d["open_edges"] == 6
