"""Mesh hierarchy: level sizes, connectivity per component, no links across bodies, determinism, caching,
2D and 3D, batching offsets (directly and through the PyG collate of LearnedSimulator)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse import csgraph
from scipy.spatial import Delaunay

from meshsim.mesh import edges_from_cells
from meshsim.mesh import hierarchy as H


def grid_2d(nx=31, ny=15, offset=(0.0, 0.0)):
    xs, ys = np.meshgrid(np.linspace(0, 2, nx), np.linspace(0, 1, ny))
    pos = np.stack([xs.ravel(), ys.ravel()], 1) + offset
    return pos, Delaunay(pos).simplices


def two_bodies_2d():
    """A plate and a disk-like blob that overlap in bounding box (Delaunay over both would link them)."""
    plate, plate_cells = grid_2d()
    angles = np.linspace(0, 2 * np.pi, 25)[:-1]
    rings = [np.array([[1.0, 1.6]])] + [r * np.stack([np.cos(angles), np.sin(angles)], 1) + [1.0, 1.6]
                                        for r in (0.2, 0.4)]
    blob = np.concatenate(rings)
    blob_cells = Delaunay(blob).simplices + len(plate)
    return np.concatenate([plate, blob]), np.concatenate([plate_cells, blob_cells]), len(plate)


def block_3d(n=7):
    g = np.linspace(0, 1, n)
    pos = np.stack(np.meshgrid(g, g, g * 0.5, indexing="ij"), -1).reshape(-1, 3)
    return pos, Delaunay(pos).simplices


def components(edges, n):
    adj = sp.coo_matrix((np.ones(edges.shape[1]), (edges[0], edges[1])), shape=(n, n))
    return csgraph.connected_components(adj, directed=False)[1]


def check_levels(pos, cells, levels):
    edges = edges_from_cells(cells)
    h = H.build_hierarchy(pos, edges, levels)
    labels = components(edges, len(pos))
    sizes = [lvl.num_nodes for lvl in h.levels]
    for lvl, level_pos, finer in zip(h.levels[1:], h.positions(pos)[1:], sizes):
        assert 0.3 * finer <= lvl.num_nodes <= 0.6 * finer  # about halving
        assert np.array_equal(np.sort(lvl.ids), lvl.ids) and lvl.ids.max() < finer
        labels = labels[lvl.ids]
        level_labels = components(lvl.edges, lvl.num_nodes)
        # Each body stays one connected component, and no edge joins two bodies.
        assert len(np.unique(level_labels)) == len(np.unique(labels))
        assert (labels[lvl.edges[0]] == labels[lvl.edges[1]]).all()
        src, dst = lvl.edges
        assert set(zip(src, dst)) == set(zip(dst, src)) and (src != dst).all()
        assert len(level_pos) == lvl.num_nodes
    assert sizes[-1] >= 5
    return h, sizes


def test_2d_two_bodies_halve_stay_connected_and_apart():
    pos, cells, _ = two_bodies_2d()
    _, sizes = check_levels(pos, cells, levels=6)
    assert len(sizes) >= 6


def test_3d_tetra_levels():
    pos, cells = block_3d()
    _, sizes = check_levels(pos, cells, levels=4)
    assert len(sizes) == 5


def test_stops_early_below_min_nodes_and_pads_with_identity():
    pos, cells = grid_2d(5, 4)
    h = H.build_hierarchy(pos, edges_from_cells(cells), levels=10)
    assert all(lvl.num_nodes >= 5 for lvl in h.levels) and len(h.levels) < 11
    padded = h.padded(10)
    assert len(padded) == 11
    assert np.array_equal(padded[-1].ids, np.arange(h.levels[-1].num_nodes))
    assert np.array_equal(padded[-1].edges, h.levels[-1].edges)


def test_deterministic_and_cached(tmp_path):
    pos, cells, _ = two_bodies_2d()
    edges = edges_from_cells(cells)
    a, b = H.build_hierarchy(pos, edges, 4), H.build_hierarchy(pos.copy(), edges.copy(), 4)
    for la, lb in zip(a.levels, b.levels):
        assert np.array_equal(la.ids, lb.ids) and np.array_equal(la.edges, lb.edges)
    first = H.cached_hierarchy(pos, cells, edges, 4, cache_dir=tmp_path)
    assert H.cached_hierarchy(pos, cells, edges, 4) is first  # memory hit
    files = list(tmp_path.glob("hierarchy-*.npz"))
    assert len(files) == 1
    H._MEMORY_CACHE.clear()
    from_disk = H.cached_hierarchy(pos, cells, edges, 4, cache_dir=tmp_path)
    for la, lb in zip(first.levels, from_disk.levels):
        assert np.array_equal(la.ids, lb.ids) and np.array_equal(la.edges, lb.edges)
    moved = pos.copy()
    moved[0, 0] += 1e-3
    assert H.mesh_key(moved, cells, 4) != H.mesh_key(pos, cells, 4)


def test_batch_levels_offsets_match_separate_graphs():
    (p1, c1), (p2, c2) = grid_2d(9, 5), grid_2d(12, 6)
    h1 = H.build_hierarchy(p1, edges_from_cells(c1), 3)
    h2 = H.build_hierarchy(p2, edges_from_cells(c2), 3)
    batched = H.batch_levels([h1, h2], 3)
    # Gathering positions down the batched levels equals gathering each graph separately, then stacking.
    feats = np.concatenate([p1, p2])
    per_graph = [np.concatenate(x) for x in zip(h1.positions(p1), h2.positions(p2))]
    level_feats = [feats]
    for lvl in batched[1:]:
        level_feats.append(level_feats[-1][lvl.ids])
    for got, want in zip(level_feats, per_graph):
        np.testing.assert_array_equal(got, want)
    for i, lvl in enumerate(batched):
        n1 = h1.padded(3)[i].num_nodes
        e1 = h1.padded(3)[i].edges
        np.testing.assert_array_equal(lvl.edges[:, : e1.shape[1]], e1)
        np.testing.assert_array_equal(lvl.edges[:, e1.shape[1]:], h2.padded(3)[i].edges + n1)


def test_simulator_collate_offsets_levels_like_batch_levels():
    from meshsim.models import LearnedSimulator, ModelConfig

    sim = LearnedSimulator(ModelConfig(levels=3, fields=(), material_keys=()), dim=2)
    samples = []
    for nx, ny in ((9, 5), (12, 6)):
        pos, cells = grid_2d(nx, ny)
        samples.append({"mesh_pos": pos, "cells": cells, "node_type": np.zeros(len(pos), np.int32),
                        "world_pos": np.repeat(pos[None], 3, 0)})
    batch = sim.collate(samples)
    hs = [H.build_hierarchy(s["mesh_pos"].astype(np.float32), edges_from_cells(s["cells"]), 3)
          for s in samples]
    want = H.batch_levels(hs, 3)
    for i in range(1, 4):
        assert torch.equal(batch.level_ids(i), torch.from_numpy(want[i].ids))
        assert torch.equal(batch.level_edges(i), torch.from_numpy(want[i].edges))
