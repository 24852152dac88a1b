"""edges_from_cells and boundary extraction against brute-force references."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from meshsim.mesh import boundary_facets, boundary_nodes, box, edges_from_cells, rectangle


def brute_force_edges(cells):
    pairs = set()
    for cell in cells.tolist():
        for a in cell:
            for b in cell:
                if a != b:
                    pairs.add((a, b))
    return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2).T


@settings(max_examples=150, deadline=None)
@given(
    cells=st.integers(1, 4).flatmap(
        lambda k: arrays(np.int64, st.tuples(st.integers(0, 30), st.just(k)), elements=st.integers(0, 12))
    )
)
def test_edges_match_brute_force(cells):
    edges = edges_from_cells(cells)
    expected = brute_force_edges(cells)
    assert edges.dtype == np.int64 and edges.shape == expected.shape
    np.testing.assert_array_equal(edges, expected)  # unique, two-way, sorted by sender then receiver
    t = edges_from_cells(torch.from_numpy(cells.astype(np.int32)))
    assert t.dtype == torch.int64
    np.testing.assert_array_equal(t.numpy(), expected)


def test_edges_of_a_structured_mesh_have_the_analytic_count():
    nx, ny = 5, 3
    mesh = rectangle(resolution=(nx, ny))
    # horizontal + vertical + one diagonal per quad, both directions
    assert edges_from_cells(mesh.cells).shape[1] == 2 * (nx * (ny + 1) + ny * (nx + 1) + nx * ny)


def brute_force_boundary(cells, k):
    from collections import Counter
    from itertools import combinations

    count = Counter(tuple(sorted(f)) for c in cells.tolist() for f in combinations(c, k - 1))
    return {f for f, n in count.items() if n == 1}


def test_boundary_facets_match_brute_force_and_point_outward():
    for mesh in (rectangle(resolution=(4, 3)), box(resolution=(3, 2, 2))):
        k = mesh.cells.shape[1]
        facets = boundary_facets(mesh.cells)
        assert {tuple(sorted(f)) for f in facets.tolist()} == brute_force_boundary(mesh.cells, k)
        center = mesh.points.mean(0)
        p = mesh.points[facets]
        if k == 3:  # outward normal of a CCW boundary edge is its direction rotated clockwise
            d = p[:, 1] - p[:, 0]
            normal = np.stack([d[:, 1], -d[:, 0]], 1)
        else:
            normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
        assert ((normal * (p.mean(1) - center)).sum(1) > 0).all()
        nodes = boundary_nodes(mesh.cells)
        on_box = np.isclose(mesh.points, mesh.points.min(0)) | np.isclose(mesh.points, mesh.points.max(0))
        np.testing.assert_array_equal(nodes, np.flatnonzero(on_box.any(1)))
