"""Primitives: exact sizes, positive orientation, conformity, closed surfaces, grading."""

import numpy as np
import pytest

from meshsim.errors import MeshError
from meshsim.mesh import (
    boundary_facets,
    box,
    defects,
    disk,
    graded_coordinates,
    quality,
    rectangle,
    slab,
    sphere_surface,
    sphere_volume,
)
from meshsim.mesh.topology import cell_facets, facet_counts


def test_graded_coordinates_ratio_and_symmetry():
    x = graded_coordinates(2.0, 10, grading=4.0, towards="start")
    h = np.diff(x)
    assert x[0] == 0 and x[-1] == pytest.approx(2.0) and h.max() / h.min() == pytest.approx(4.0)
    assert (np.diff(h) > 0).all()  # finest at the start
    both = np.diff(graded_coordinates(1.0, 9, grading=3.0, towards="both"))
    np.testing.assert_allclose(both, both[::-1])
    assert both.max() / both.min() == pytest.approx(3.0) and both[0] == pytest.approx(both.min())
    center = np.diff(graded_coordinates(1.0, 8, grading=2.0, towards="center"))
    assert center[3] == pytest.approx(center.min()) and center[0] == pytest.approx(center.max())
    with pytest.raises(MeshError, match="grading"):
        graded_coordinates(1.0, 4, grading=0.5)


@pytest.mark.parametrize(
    "mesh,size,rel",
    [(rectangle((2.0, 0.5), (7, 3), grading=3.0, towards="center"), 1.0, 1e-12),
     (box((1.0, 2.0, 0.5), (3, 4, 2), grading=2.0), 1.0, 1e-12),
     (slab((0.2, 0.1), 0.004, (10, 5), layers=2), 0.2 * 0.1 * 0.004, 1e-12),
     (disk(0.5, 8), np.pi * 0.25, 1e-2),  # inscribed polygon of 48 sides: 0.3 % short
     (sphere_volume(1.0, 6), 4 / 3 * np.pi, 3e-2)],  # inscribed polyhedron
)  # fmt: skip
def test_primitives_are_positive_conforming_and_fill_their_shape(mesh, size, rel):
    q = quality(mesh)
    assert (q["measure"] > 0).all(), "every cell positively oriented"
    assert q["measure"].sum() == pytest.approx(size, rel=rel)
    assert q["measure"].sum() <= size * (1 + 1e-12)
    _, counts = facet_counts(cell_facets(mesh.cells))
    assert counts.max() == 2, "a facet is shared by at most two cells (conforming)"
    d = defects(mesh)
    assert d["inverted"] == d["degenerate"] == d["duplicate_nodes"] == d["unreferenced_nodes"] == 0
    if mesh.cell_type == "tetra":
        assert d["open_edges"] == 0 and d["non_manifold_edges"] == 0  # closed, manifold boundary


def test_box_structure():
    mesh = box(resolution=(2, 3, 4))
    assert mesh.num_nodes == 3 * 4 * 5 and mesh.num_cells == 6 * 2 * 3 * 4
    assert len(boundary_facets(mesh.cells)) == 2 * 2 * (2 * 3 + 3 * 4 + 2 * 4)
    assert quality(mesh)["radius_ratio"].min() > 0.5  # Kuhn tetrahedra of a cube are all congruent


def test_sphere_surface_is_a_closed_outward_icosphere():
    mesh = sphere_surface(2.0, 3, center=(1.0, 0.0, 0.0))
    assert mesh.num_nodes == 10 * 4**3 + 2 and mesh.num_cells == 20 * 4**3
    assert mesh.num_nodes - mesh.num_cells // 2 * 3 + mesh.num_cells == 2  # Euler characteristic V - E + F
    np.testing.assert_allclose(np.linalg.norm(mesh.points - [1, 0, 0], axis=1), 2.0)
    p = mesh.points[mesh.cells]
    normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    assert ((normal * (p.mean(1) - [1, 0, 0])).sum(1) > 0).all()
    assert quality(mesh)["measure"].sum() == pytest.approx(4 * np.pi * 4, rel=2e-2)
    d = defects(mesh)
    assert d["open_edges"] == 0 and d["non_manifold_edges"] == 0


def test_grading_refines_where_asked():
    mesh = rectangle((1.0, 1.0), (10, 10), grading=5.0, towards="start")
    area = quality(mesh)["measure"]
    centroid = mesh.points[mesh.cells].mean(1)
    assert area[(centroid < 0.2).all(1)].mean() < area[(centroid > 0.8).all(1)].mean() / 10
