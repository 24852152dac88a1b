"""Connectivity derived from cells: unique two-way edges, boundary facets and boundary nodes (vectorized)."""

from __future__ import annotations

from itertools import combinations

import numpy as np

# Outward faces of a positively oriented tetrahedron (v0, v1, v2, v3), face i opposite vertex i.
TET_FACES = np.array([[1, 2, 3], [0, 3, 2], [0, 1, 3], [0, 2, 1]])
# Boundary edges of a counter-clockwise triangle, in its orientation.
TRI_EDGES = np.array([[0, 1], [1, 2], [2, 0]])


def edges_from_cells(cells, num_nodes: int | None = None):
    """Unique two-way edges [2, E] int64 of all node pairs within a cell, sorted by sender then receiver.

    Works on numpy arrays and torch tensors alike (a tensor in gives a tensor out, on the same device). Pairs
    are packed into one int64 key (sender * N + receiver) so one sort-unique removes duplicates.
    """
    if type(cells).__module__.startswith("torch"):
        return _edges_torch(cells, num_nodes)
    cells = np.asarray(cells)
    if cells.ndim != 2:
        raise ValueError(f"cells must be [M, k], got shape {cells.shape}")
    pairs = list(combinations(range(cells.shape[1]), 2))
    if cells.size == 0 or not pairs:
        return np.zeros((2, 0), np.int64)
    cells = cells.astype(np.int64, copy=False)
    a = cells[:, [p[0] for p in pairs]].ravel()
    b = cells[:, [p[1] for p in pairs]].ravel()
    n = _key_base(int(cells.min()), int(cells.max()), num_nodes)
    senders, receivers = np.concatenate([a, b]), np.concatenate([b, a])
    keys = np.unique(senders * n + receivers)
    senders, receivers = np.divmod(keys, n)
    keep = senders != receivers  # degenerate cells (a repeated node) give no self loops
    return np.stack([senders[keep], receivers[keep]])


def _edges_torch(cells, num_nodes):
    import torch

    if cells.dim() != 2:
        raise ValueError(f"cells must be [M, k], got shape {tuple(cells.shape)}")
    pairs = list(combinations(range(cells.shape[1]), 2))
    if cells.numel() == 0 or not pairs:
        return torch.zeros((2, 0), dtype=torch.long, device=cells.device)
    cells = cells.long()
    first = torch.tensor([p[0] for p in pairs], device=cells.device)
    second = torch.tensor([p[1] for p in pairs], device=cells.device)
    a, b = cells[:, first].reshape(-1), cells[:, second].reshape(-1)
    n = _key_base(int(cells.min()), int(cells.max()), num_nodes)
    keys = torch.unique(torch.cat([a * n + b, b * n + a]), sorted=True)
    senders, receivers = keys // n, keys % n
    keep = senders != receivers
    return torch.stack([senders[keep], receivers[keep]])


def _key_base(lo: int, hi: int, num_nodes: int | None) -> int:
    """The base N of the packed key sender * N + receiver; indices must lie in 0..N-1 for it to be unique."""
    n = hi + 1 if num_nodes is None else int(num_nodes)
    if lo < 0 or hi >= n:
        raise ValueError(f"cell indices {lo}..{hi} are outside 0..{n - 1}")
    return n


def cell_facets(cells: np.ndarray) -> np.ndarray:
    """Every facet of every cell, oriented outward: [M * f, k - 1] (triangles -> edges, tetrahedra -> faces)."""
    cells = np.asarray(cells, dtype=np.int64)
    local = {3: TRI_EDGES, 4: TET_FACES}.get(cells.shape[1])
    if local is None:
        raise ValueError(f"facets are defined for triangles and tetrahedra, not {cells.shape[1]}-node cells")
    return cells[:, local].reshape(-1, local.shape[1])


def facet_counts(facets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For [F, m] facets: index of each facet's unique (sorted-node) key, and how often each key occurs."""
    key = np.sort(facets, axis=1)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    return inverse.reshape(-1), counts


def boundary_facets(cells: np.ndarray) -> np.ndarray:
    """Facets that belong to exactly one cell, oriented outward (the mesh's boundary edges or surface)."""
    facets = cell_facets(cells)
    if len(facets) == 0:
        return facets
    inverse, counts = facet_counts(facets)
    return facets[counts[inverse] == 1]


def boundary_nodes(cells: np.ndarray) -> np.ndarray:
    """Sorted indices of the nodes on the boundary."""
    return np.unique(boundary_facets(cells))


def boundary_areas(points: np.ndarray, cells: np.ndarray, thickness: float = 1.0) -> np.ndarray:
    """[N] the boundary area each node stands for: its share of the boundary facets it belongs to (2D: half of
    each boundary edge's length times `thickness`; 3D: a third of each boundary triangle's area); 0 inside.

    Summing a pressure times these areas integrates it over the boundary, whatever the mesh resolution.
    """
    points = np.asarray(points, dtype=np.float64)
    facets = boundary_facets(cells)
    area = np.zeros(len(points))
    if len(facets) == 0:
        return area
    p = points[facets]
    if facets.shape[1] == 2:
        size = np.linalg.norm(p[:, 1] - p[:, 0], axis=1) * thickness
    else:
        size = 0.5 * np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1)
    np.add.at(area, facets.ravel(), np.repeat(size / facets.shape[1], facets.shape[1]))
    return area
