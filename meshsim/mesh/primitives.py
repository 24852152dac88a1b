"""Mesh primitives: rectangle and disk (triangles), box and slab (tetrahedra), sphere surface and volume.

`resolution` is the number of cells along each axis (or rings/shells for round shapes); `grading` the ratio of
the largest to the smallest spacing along an axis, with cells shrinking `towards` "start", "end", "both" ends
or the "center". Every primitive returns positively oriented cells (counter-clockwise triangles, tetrahedra of
positive volume, outward-facing sphere triangles).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from scipy.spatial import Delaunay

from meshsim.errors import MeshError
from meshsim.mesh.mesh import Mesh
from meshsim.mesh.quality import signed_measure
from meshsim.mesh.topology import edges_from_cells

TOWARDS = ("start", "end", "both", "center")


def graded_coordinates(length: float, cells: int, grading: float = 1.0, towards: str = "start") -> np.ndarray:
    """cells + 1 coordinates from 0 to length whose spacings form a geometric progression (max/min = grading)."""
    if isinstance(cells, bool) or not isinstance(cells, (int, np.integer)) or cells < 1:
        raise MeshError(f"resolution must be a positive integer number of cells, got {cells!r}")
    if not np.isfinite(length) or length <= 0:
        raise MeshError(f"mesh size must be a positive length, got {length!r}")
    if not np.isfinite(grading) or grading < 1:
        raise MeshError(f"grading must be >= 1 (largest over smallest spacing), got {grading!r}")
    if towards not in TOWARDS:
        raise MeshError(f"towards must be one of {', '.join(TOWARDS)}, got {towards!r}")
    i = np.arange(cells)
    if towards in ("start", "end"):
        steps = max(cells - 1, 1)
        exponent = i if towards == "start" else cells - 1 - i
    else:
        steps = max((cells - 1) // 2, 1)
        distance_from_end = np.minimum(i, cells - 1 - i)
        exponent = distance_from_end if towards == "both" else steps - np.minimum(distance_from_end, steps)
    spacing = grading ** (exponent / steps)
    coords = np.concatenate([[0.0], np.cumsum(spacing)])
    return coords * (length / coords[-1])


def _per_axis(value, dims: int, name: str) -> tuple:
    values = tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else (value,) * dims
    if len(values) != dims:
        raise MeshError(f"{name} needs {dims} values (one per axis), got {value!r}")
    return values


def _positive(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Swap two nodes of every negatively oriented cell (triangles in 2D, tetrahedra)."""
    flip = signed_measure(points, cells) < 0
    cells = cells.copy()
    cells[flip, -2:] = cells[flip, -1:-3:-1]
    return cells


def rectangle(size=(1.0, 1.0), resolution=(8, 8), *, origin=(0.0, 0.0), grading=1.0, towards="start") -> Mesh:
    """Structured triangles on [origin, origin + size]; diagonals alternate so the mesh has no preferred slant."""
    nx, ny = _per_axis(resolution, 2, "resolution")
    gx, gy = _per_axis(grading, 2, "grading")
    sx, sy = _per_axis(size, 2, "size")
    x = graded_coordinates(sx, nx, gx, towards) + origin[0]
    y = graded_coordinates(sy, ny, gy, towards) + origin[1]
    points = np.stack(np.meshgrid(x, y, indexing="ij"), -1).reshape(-1, 2)
    i, j = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    a = (i * (ny + 1) + j).ravel()  # corner (i, j); b = (i+1, j), c = (i+1, j+1), d = (i, j+1)
    b, c, d = a + ny + 1, a + ny + 2, a + 1
    even = ((i + j) % 2 == 0).ravel()
    first = np.where(even[:, None], np.stack([a, b, c], 1), np.stack([a, b, d], 1))
    second = np.where(even[:, None], np.stack([a, c, d], 1), np.stack([b, c, d], 1))
    return Mesh(points, np.concatenate([first, second]), "triangle")


def disk(radius=1.0, resolution=8, *, center=(0.0, 0.0), grading=1.0, towards="end") -> Mesh:
    """Triangles of a disk: `resolution` rings of nodes (ring i holds 6 i nodes), Delaunay-connected.

    towards="end" refines near the rim, "start" near the center.
    """
    radii = graded_coordinates(float(radius), resolution, grading, towards)
    rings = [np.zeros((1, 2))]
    for i, r in enumerate(radii[1:], start=1):
        angle = 2 * np.pi * (np.arange(6 * i) + 0.5 * (i % 2)) / (6 * i)
        rings.append(r * np.stack([np.cos(angle), np.sin(angle)], 1))
    points = np.concatenate(rings) + np.asarray(center, dtype=np.float64)
    cells = Delaunay(points).simplices.astype(np.int64)
    cells = cells[np.abs(signed_measure(points, cells)) > 1e-12 * radius**2]
    return Mesh(points, _positive(points, cells), "triangle")


# Kuhn's subdivision: one tetrahedron per axis order, all around the hex diagonal (0,0,0)-(1,1,1). Every hex
# of a structured grid cuts its faces along the same diagonals, so neighbouring hexes conform.
_KUHN = np.array([[(0, 0, 0), tuple(np.eye(3, dtype=int)[p[0]]),
                   tuple(np.eye(3, dtype=int)[p[0]] + np.eye(3, dtype=int)[p[1]]), (1, 1, 1)]
                  for p in itertools.permutations(range(3))])  # fmt: skip


def box(size=(1.0, 1.0, 1.0), resolution=(4, 4, 4), *, origin=(0.0, 0.0, 0.0), grading=1.0, towards="start") -> Mesh:
    """Structured tetrahedra: each hex of an nx x ny x nz grid split into 6 conforming tetrahedra."""
    n = _per_axis(resolution, 3, "resolution")
    grades = _per_axis(grading, 3, "grading")
    sizes = _per_axis(size, 3, "size")
    axes = [graded_coordinates(s, k, g, towards) + o for s, k, g, o in zip(sizes, n, grades, origin)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    shape = np.array(n) + 1
    corner = np.stack(np.meshgrid(*[np.arange(k) for k in n], indexing="ij"), -1).reshape(-1, 1, 1, 3)
    vertex = corner + _KUHN[None]  # [hexes, 6, 4, 3] grid coordinates
    cells = np.ravel_multi_index(tuple(np.moveaxis(vertex, -1, 0)), shape).reshape(-1, 4)
    return Mesh(points, _positive(points, cells), "tetra")


def slab(size=(1.0, 1.0), thickness=0.1, resolution=(8, 8), *, layers=2, origin=(0.0, 0.0, 0.0), grading=1.0,
         towards="start") -> Mesh:  # fmt: skip
    """A thin plate of tetrahedra: `size` in x and y, `thickness` in z with `layers` cells through it."""
    sx, sy = _per_axis(size, 2, "size")
    nx, ny = _per_axis(resolution, 2, "resolution")
    gx, gy = _per_axis(grading, 2, "grading")
    return box((sx, sy, thickness), (nx, ny, layers), origin=origin, grading=(gx, gy, 1.0), towards=towards)


def sphere_surface(radius=1.0, subdivisions=2, *, center=(0.0, 0.0, 0.0)) -> Mesh:
    """Icosphere: an icosahedron whose triangles are split in four `subdivisions` times, projected outward."""
    if isinstance(subdivisions, bool) or not isinstance(subdivisions, int) or not 0 <= subdivisions <= 8:
        raise MeshError(f"subdivisions must be an integer in 0..8, got {subdivisions!r}")
    if not np.isfinite(radius) or radius <= 0:
        raise MeshError(f"sphere radius must be positive, got {radius!r}")
    t = (1 + 5**0.5) / 2
    points = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t],
                       [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], dtype=np.float64)  # fmt: skip
    faces = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
                      [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9],
                      [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]])  # fmt: skip
    for _ in range(subdivisions):
        edges = edges_from_cells(faces)
        edges = edges[:, edges[0] < edges[1]]  # one midpoint per undirected edge
        n = len(points)
        points = np.concatenate([points, 0.5 * (points[edges[0]] + points[edges[1]])])
        key = edges[0] * n + edges[1]

        a, b, c = faces.T
        ab, bc, ca = (n + np.searchsorted(key, np.minimum(u, v) * n + np.maximum(u, v)) for u, v in
                      ((a, b), (b, c), (c, a)))  # fmt: skip
        faces = np.concatenate([np.stack(f, 1) for f in ((a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca))])
    points = radius * points / np.linalg.norm(points, axis=1, keepdims=True)
    p = points[faces]
    outward = (np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]) * p.mean(1)).sum(1) > 0
    faces[~outward, 1:] = faces[~outward, :0:-1]
    return Mesh(points + np.asarray(center, dtype=np.float64), faces, "triangle")


def sphere_volume(radius=1.0, resolution=6, *, center=(0.0, 0.0, 0.0), grading=1.0, towards="end") -> Mesh:
    """Tetrahedra of a ball: `resolution` concentric shells of near-uniform (Fibonacci) points, Delaunay-connected.

    Shell i holds about 4 pi r_i^2 / (0.87 h^2) points for the local shell spacing h, so elements stay near
    isotropic; towards="end" refines near the surface. Delaunay in 3D can leave a few flat "sliver" elements:
    check `quality(mesh)["radius_ratio"]` before explicit dynamics.
    """
    radii = graded_coordinates(float(radius), resolution, grading, towards)
    golden = np.pi * (3 - np.sqrt(5))
    shells = [np.zeros((1, 3))]
    for i in range(1, len(radii)):
        h = radii[i] - radii[i - 1]
        count = max(4, int(round(4 * np.pi * radii[i] ** 2 / (0.866 * h * h))))
        k = np.arange(count) + 0.5
        z = 1 - 2 * k / count
        rho = np.sqrt(1 - z * z)
        phi = golden * k + i  # rotate each shell so shells do not line up
        shells.append(radii[i] * np.stack([rho * np.cos(phi), rho * np.sin(phi), z], 1))
    points = np.concatenate(shells)
    cells = Delaunay(points).simplices.astype(np.int64)
    h_min = float(np.diff(radii).min())
    cells = cells[np.abs(signed_measure(points, cells)) > 1e-9 * h_min**3]
    points = points + np.asarray(center, dtype=np.float64)
    return Mesh(points, _positive(points, cells), "tetra")
