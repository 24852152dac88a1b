"""Mesh hierarchy for HCMT: bi-stride pooling, then Delaunay re-triangulation of the kept nodes, per level.

Level 0 is the mesh itself. Level i+1 keeps, in every connected component of level i, the nodes at an even
(or odd: the smaller set) number of hops from the component's seed (the node nearest its centroid), and links
them by a Delaunay triangulation of their reference positions (`mesh_pos`). Decisions the published code
leaves open, fixed here:

- Delaunay runs per connected component of the mesh, so separate bodies (plate and ball) are never linked.
- Delaunay edges longer than `edge_length_factor` x the component's median Delaunay edge are dropped (they
  span concave gaps and hull slivers); the Delaunay minimum spanning tree is kept whole, so every component
  stays connected at every level.
- A component with at most d + 1 kept nodes is linked all-to-all (Delaunay needs d + 2).
- Coarsening stops early when a level would have fewer than `min_nodes` nodes or would not shrink; the model
  pads the missing levels with identity levels.

Built once per mesh and cached in memory (and optionally on disk) under a hash of cells and mesh_pos.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph
from scipy.spatial import Delaunay, QhullError

from meshsim.errors import MeshError
from meshsim.outputs import atomic_path

_MEMORY_CACHE: OrderedDict[str, Hierarchy] = OrderedDict()
_MEMORY_CACHE_SIZE = 256


@dataclass(frozen=True)
class Level:
    """One level: `ids` [n_i] index the previous level's nodes (level 0: identity); `edges` [2, E_i] are local."""

    ids: np.ndarray
    edges: np.ndarray

    @property
    def num_nodes(self) -> int:
        return int(self.ids.shape[0])


@dataclass(frozen=True)
class Hierarchy:
    levels: tuple[Level, ...]

    def padded(self, depth: int) -> tuple[Level, ...]:
        """Levels 0..depth, repeating the coarsest level (identity ids) where coarsening stopped early."""
        out = list(self.levels[: depth + 1])
        while len(out) < depth + 1:
            last = out[-1]
            out.append(Level(np.arange(last.num_nodes, dtype=np.int64), last.edges))
        return tuple(out)

    def positions(self, pos: np.ndarray) -> list[np.ndarray]:
        """`pos` [N, ...] gathered down to every level."""
        out = [pos[self.levels[0].ids]]
        for level in self.levels[1:]:
            out.append(out[-1][level.ids])
        return out


def _undirected_unique(pairs: np.ndarray, n: int) -> np.ndarray:
    """[P, 2] pairs -> sorted, unique, two-way [2, E] int64 without self loops."""
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    both = np.concatenate([pairs, pairs[:, ::-1]]).astype(np.int64)
    key = np.unique(both[:, 0] * n + both[:, 1])
    return np.stack([key // n, key % n])


def _components(edges: np.ndarray, n: int) -> np.ndarray:
    adj = sp.coo_matrix((np.ones(edges.shape[1]), (edges[0], edges[1])), shape=(n, n)).tocsr()
    return csgraph.connected_components(adj, directed=False)[1]


def bistride_select(pos: np.ndarray, edges: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Sorted indices of the nodes kept by bi-stride pooling (smaller hop-parity set per component)."""
    n = pos.shape[0]
    num_comp = int(labels.max()) + 1 if n else 0
    counts = np.bincount(labels, minlength=num_comp)
    centroids = np.zeros((num_comp, pos.shape[1]))
    np.add.at(centroids, labels, pos)
    centroids /= counts[:, None]
    dist = np.linalg.norm(pos - centroids[labels], axis=1)
    order = np.lexsort((np.arange(n), dist, labels))  # per component: nearest first, ties by index
    first = np.ones(n, dtype=bool)
    first[1:] = labels[order][1:] != labels[order][:-1]
    seeds = order[first]
    # One BFS for all components: a virtual source (node n) linked to every seed.
    src = np.concatenate([edges[0], np.full(seeds.size, n)])
    dst = np.concatenate([edges[1], seeds])
    adj = sp.coo_matrix((np.ones(src.size), (src, dst)), shape=(n + 1, n + 1)).tocsr()
    hops = csgraph.shortest_path(adj, directed=False, unweighted=True, indices=n)[:n] - 1.0
    even = (hops % 2 == 0).astype(np.int64)
    even_count = np.bincount(labels, weights=even, minlength=num_comp)
    odd_count = counts - even_count
    keep_even = (even_count <= odd_count) | (odd_count == 0)
    keep = np.where(keep_even[labels], even == 1, even == 0)
    return np.flatnonzero(keep)


def delaunay_edges(pos: np.ndarray, labels: np.ndarray, edge_length_factor: float) -> np.ndarray:
    """Two-way edges [2, E] of per-component Delaunay triangulations of `pos`, long edges pruned (MST kept)."""
    n, d = pos.shape
    pairs = []
    for comp in np.unique(labels):
        members = np.flatnonzero(labels == comp)
        if members.size <= d + 1:
            pairs += [np.array(list(itertools.combinations(members, 2)), dtype=np.int64).reshape(-1, 2)]
            continue
        try:
            simplices = Delaunay(pos[members]).simplices
        except QhullError:  # flat or degenerate set (e.g. a surface in 3D): joggle the input
            simplices = Delaunay(pos[members], qhull_options="QJ Qbb Qc Qz").simplices
        local = np.concatenate([simplices[:, [a, b]] for a, b in itertools.combinations(range(simplices.shape[1]), 2)])
        local = _undirected_unique(local, members.size)
        local = local[:, local[0] < local[1]]
        length = np.linalg.norm(pos[members[local[0]]] - pos[members[local[1]]], axis=1)
        short = length <= edge_length_factor * np.median(length)
        tree = csgraph.minimum_spanning_tree(
            sp.coo_matrix((length + 1e-12, (local[0], local[1])), shape=(members.size,) * 2)
        ).tocoo()
        kept = np.concatenate([local[:, short].T, np.stack([tree.row, tree.col], axis=1)])
        pairs.append(members[kept])
    if not pairs:
        return np.empty((2, 0), dtype=np.int64)
    return _undirected_unique(np.concatenate(pairs), n)


def build_hierarchy(
    mesh_pos: np.ndarray,
    edges: np.ndarray,
    levels: int,
    min_nodes: int = 5,
    edge_length_factor: float = 2.0,
) -> Hierarchy:
    """Coarsen the graph (`edges` [2, E] two-way over `mesh_pos` [N, d]) into at most `levels` coarse levels."""
    pos = np.asarray(mesh_pos, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.int64)
    n = pos.shape[0]
    if pos.ndim != 2 or pos.shape[1] not in (2, 3) or not np.isfinite(pos).all():
        raise MeshError(f"hierarchy needs finite mesh_pos of shape [N, 2|3], got {pos.shape}: check the mesh")
    if edges.size and (edges.min() < 0 or edges.max() >= n):
        raise MeshError(f"hierarchy edge index out of range [0, {n}): check the mesh cells")
    labels = _components(edges, n)
    out = [Level(np.arange(n, dtype=np.int64), edges)]
    for _ in range(levels):
        kept = bistride_select(pos, out[-1].edges, labels)
        if kept.size < min_nodes or kept.size == pos.shape[0]:
            break
        pos, labels = pos[kept], labels[kept]
        out.append(Level(kept.astype(np.int64), delaunay_edges(pos, labels, edge_length_factor)))
    return Hierarchy(tuple(out))


def mesh_key(mesh_pos: np.ndarray, cells: np.ndarray, *params) -> str:
    """Hash of a mesh's cells and reference positions (and the hierarchy parameters)."""
    h = hashlib.sha1()
    for array in (np.ascontiguousarray(cells, dtype=np.int64), np.ascontiguousarray(mesh_pos, dtype=np.float32)):
        h.update(str(array.shape).encode())
        h.update(array.tobytes())
    h.update(repr(params).encode())
    return h.hexdigest()


def cached_hierarchy(
    mesh_pos: np.ndarray,
    cells: np.ndarray,
    edges: np.ndarray,
    levels: int,
    cache_dir: str | Path | None = None,
    min_nodes: int = 5,
    edge_length_factor: float = 2.0,
) -> Hierarchy:
    """`build_hierarchy`, memoized in memory and (with `cache_dir`) on disk, keyed by `mesh_key`."""
    key = mesh_key(mesh_pos, cells, levels, min_nodes, edge_length_factor)
    if key in _MEMORY_CACHE:
        _MEMORY_CACHE.move_to_end(key)
        return _MEMORY_CACHE[key]
    path = Path(cache_dir) / f"hierarchy-{key}.npz" if cache_dir is not None else None
    if path is not None and path.is_file():
        with np.load(path) as data:
            count = int(data["num_levels"])
            hierarchy = Hierarchy(tuple(Level(data[f"ids{i}"], data[f"edges{i}"]) for i in range(count)))
    else:
        hierarchy = build_hierarchy(mesh_pos, edges, levels, min_nodes, edge_length_factor)
        if path is not None:
            _save(hierarchy, path)
    _MEMORY_CACHE[key] = hierarchy
    if len(_MEMORY_CACHE) > _MEMORY_CACHE_SIZE:
        _MEMORY_CACHE.popitem(last=False)
    return hierarchy


def _save(hierarchy: Hierarchy, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"num_levels": np.array(len(hierarchy.levels))}
    for i, level in enumerate(hierarchy.levels):
        arrays[f"ids{i}"], arrays[f"edges{i}"] = level.ids, level.edges
    with atomic_path(path, unique=True) as tmp, open(tmp, "wb") as f:  # DataLoader workers may race to write it
        np.savez(f, **arrays)


def batch_levels(hierarchies: list[Hierarchy], depth: int) -> list[Level]:
    """Stack several graphs' hierarchies (padded to `depth`) into one, offsetting ids and edges per level."""
    padded = [h.padded(depth) for h in hierarchies]
    out = []
    for i in range(depth + 1):
        ids, edges = [], []
        prev_offset = offset = 0
        for levels in padded:
            ids.append(levels[i].ids + prev_offset)
            edges.append(levels[i].edges + offset)
            prev_offset += levels[i - 1].num_nodes if i else levels[i].num_nodes
            offset += levels[i].num_nodes
        out.append(Level(np.concatenate(ids), np.concatenate(edges, axis=1)))
    return out
