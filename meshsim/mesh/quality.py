"""Element quality: signed size, radius ratio, aspect ratio, minimum angle; and whole-mesh defect counts.

Radius ratio is d * inradius / circumradius (1 for the regular element, 0 for a degenerate one); aspect ratio
is the longest edge over the longest edge of the regular element with the same inradius (1 at best).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from meshsim.mesh.mesh import Mesh
from meshsim.mesh.topology import boundary_facets, facet_counts

DEGENERATE_RATIO = 1e-6  # radius ratio below which an element counts as degenerate (flat or collapsed)


def signed_measure(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Signed area of 2D triangles, signed volume of tetrahedra, (unsigned) area of triangles in 3D."""
    p = np.asarray(points, dtype=np.float64)[np.asarray(cells)]
    e = p[:, 1:] - p[:, :1]
    if cells.shape[1] == 4:
        return np.linalg.det(e) / 6.0
    if p.shape[2] == 2:
        return 0.5 * (e[:, 0, 0] * e[:, 1, 1] - e[:, 0, 1] * e[:, 1, 0])
    return 0.5 * np.linalg.norm(np.cross(e[:, 0], e[:, 1]), axis=1)


def quality(mesh: Mesh) -> dict[str, np.ndarray]:
    """Per-cell measures: `measure` (signed area/volume), `radius_ratio`, `aspect_ratio`, `min_angle` (deg).

    For tetrahedra `min_angle` is the smallest dihedral angle.
    """
    p = mesh.points[mesh.cells]
    measure = signed_measure(mesh.points, mesh.cells)
    size = np.abs(measure)
    with np.errstate(divide="ignore", invalid="ignore"):
        if mesh.cell_type == "triangle":
            lengths = np.linalg.norm(p[:, [1, 2, 0]] - p, axis=2)  # edges opposite vertex 2, 0, 1
            inradius = 2 * size / lengths.sum(1)
            circumradius = lengths.prod(1) / (4 * size)
            ratio = 2 * inradius / circumradius
            aspect = lengths.max(1) / (2 * np.sqrt(3) * inradius)
            a, b, c = lengths[:, 1], lengths[:, 2], lengths[:, 0]  # opposite vertices 0, 1, 2
            cosines = np.stack([(b**2 + c**2 - a**2) / (2 * b * c), (a**2 + c**2 - b**2) / (2 * a * c),
                                (a**2 + b**2 - c**2) / (2 * a * b)], 1)  # fmt: skip
            min_angle = np.degrees(np.arccos(np.clip(cosines, -1, 1))).min(1)
        else:
            e = p[:, 1:] - p[:, :1]
            faces = p[:, [[1, 2, 3], [0, 3, 2], [0, 1, 3], [0, 2, 1]]]
            normals = np.cross(faces[:, :, 1] - faces[:, :, 0], faces[:, :, 2] - faces[:, :, 0])  # outward x 2A
            areas = 0.5 * np.linalg.norm(normals, axis=2)
            inradius = 3 * size / areas.sum(1)
            sq = (e**2).sum(2)
            det = np.linalg.det(e)
            center = (sq[:, 0, None] * np.cross(e[:, 1], e[:, 2]) + sq[:, 1, None] * np.cross(e[:, 2], e[:, 0])
                      + sq[:, 2, None] * np.cross(e[:, 0], e[:, 1])) / (2 * det[:, None])  # fmt: skip
            circumradius = np.linalg.norm(center, axis=1)
            ratio = 3 * inradius / circumradius
            pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
            edges = np.stack([p[:, j] - p[:, i] for i, j in pairs], 1)
            aspect = np.linalg.norm(edges, axis=2).max(1) / (2 * np.sqrt(6) * inradius)
            unit = normals / (2 * areas[..., None])
            cos_dihedral = np.stack([-(unit[:, i] * unit[:, j]).sum(1) for i, j in pairs], 1)
            min_angle = np.degrees(np.arccos(np.clip(cos_dihedral, -1, 1))).min(1)
    ratio = np.nan_to_num(ratio, nan=0.0, posinf=0.0)
    aspect = np.nan_to_num(aspect, nan=np.inf)
    min_angle = np.nan_to_num(min_angle, nan=0.0)
    return {"measure": measure, "radius_ratio": ratio, "aspect_ratio": aspect, "min_angle": min_angle}


def oriented(mesh: Mesh) -> bool:
    """Whether cells have an orientation to check: 2D triangles and tetrahedra (not surfaces in 3D)."""
    return mesh.cell_type == "tetra" or mesh.dim == 2


def defects(mesh: Mesh, tolerance: float = 1e-9) -> dict[str, Any]:
    """Counts of what makes a mesh unfit for simulation, with the first offender of each kind.

    inverted: negative signed size; degenerate: radius ratio < 1e-6 or a repeated node; duplicate_nodes: points
    closer than `tolerance` x bounding-box diagonal; unreferenced_nodes: in no cell; open_edges / non_manifold
    _edges: surface edges shared by one / more than two surface triangles (the surface is the triangles
    themselves, or the boundary of a tetrahedral mesh); for 2D meshes these are skipped.
    """
    q = quality(mesh)
    out: dict[str, Any] = {}
    inverted = np.flatnonzero(q["measure"] < 0) if oriented(mesh) else np.zeros(0, int)
    repeated = (np.sort(mesh.cells, 1)[:, 1:] == np.sort(mesh.cells, 1)[:, :-1]).any(1)
    degenerate = np.flatnonzero((q["radius_ratio"] < DEGENERATE_RATIO) | repeated)
    extent = np.ptp(mesh.points, axis=0) if mesh.num_nodes else np.zeros(mesh.dim)
    radius = tolerance * max(float(np.linalg.norm(extent)), 1e-300)
    pairs = cKDTree(mesh.points).query_pairs(radius, output_type="ndarray") if mesh.num_nodes else np.zeros((0, 2))
    duplicates = np.unique(pairs.max(1)) if len(pairs) else np.zeros(0, int)
    referenced = np.zeros(mesh.num_nodes, bool)
    referenced[mesh.cells.ravel()] = True
    unreferenced = np.flatnonzero(~referenced)
    for name, idx in [("inverted", inverted), ("degenerate", degenerate), ("duplicate_nodes", duplicates),
                      ("unreferenced_nodes", unreferenced)]:  # fmt: skip
        out[name] = int(len(idx))
        out[f"first_{name}"] = int(idx[0]) if len(idx) else None
    if mesh.dim == 3:
        surface = mesh.cells if mesh.cell_type == "triangle" else boundary_facets(mesh.cells)
        edges = surface[:, [[0, 1], [1, 2], [2, 0]]].reshape(-1, 2)
        _, counts = facet_counts(edges) if len(edges) else (None, np.zeros(0, int))
        out["surface_triangles"] = int(len(surface))
        out["open_edges"] = int((counts == 1).sum())
        out["non_manifold_edges"] = int((counts > 2).sum())
    return out
