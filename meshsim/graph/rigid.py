"""Rigid bodies in a learned rollout: the best rigid motion of each body that fits predicted node positions.

A rigid obstacle (the ball of impact-plate-2d) moves without deforming, but a network predicts each of its nodes
on its own, so small independent errors crumple it over a rollout. Projecting the predicted nodes onto the
closest rigid placement of the body's reference shape (Kabsch: centroid + rotation from the SVD of the
cross-covariance, reflections excluded) keeps the shape exact and keeps the body's predicted translation and
rotation (least squares over its nodes).

    groups = rigid_groups(edge_index, node_type == NodeType.OBSTACLE)   # once per mesh
    pos = project_rigid(pos, mesh_pos, groups)                            # every step
"""

from __future__ import annotations

import numpy as np
import torch


def rigid_groups(edge_index: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
    """[N] int64: the connected component (over mesh edges between member nodes) of each member node, -1 for
    every other node. Built once per mesh from CPU tensors (scipy)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    members_np = members.detach().cpu().numpy().astype(bool)
    groups = np.full(members_np.shape[0], -1, dtype=np.int64)
    ids = np.flatnonzero(members_np)
    if ids.size == 0:
        return torch.from_numpy(groups)
    local = np.full(members_np.shape[0], -1, dtype=np.int64)
    local[ids] = np.arange(ids.size)
    s, r = edge_index.detach().cpu().numpy()
    inside = members_np[s] & members_np[r]
    adjacency = coo_matrix((np.ones(int(inside.sum())), (local[s[inside]], local[r[inside]])),
                           shape=(ids.size, ids.size))
    _, labels = connected_components(adjacency, directed=False)
    groups[ids] = labels
    return torch.from_numpy(groups)


def project_rigid(pos: torch.Tensor, reference: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Replace the nodes of each group (groups >= 0) in `pos` [N, d] by the rigid placement of `reference` [N, d]
    that fits them best in least squares; other nodes are returned unchanged."""
    members = groups >= 0
    if not bool(members.any()):
        return pos
    g = groups[members]
    count = int(g.max()) + 1
    x, ref = pos[members].double(), reference[members].double()
    d = pos.shape[1]
    sizes = torch.zeros(count, dtype=x.dtype, device=x.device).index_add_(0, g, torch.ones_like(g, dtype=x.dtype))
    centre_x = torch.zeros(count, d, dtype=x.dtype, device=x.device).index_add_(0, g, x) / sizes[:, None]
    centre_r = torch.zeros(count, d, dtype=x.dtype, device=x.device).index_add_(0, g, ref) / sizes[:, None]
    px, pr = x - centre_x[g], ref - centre_r[g]
    cov = torch.zeros(count, d, d, dtype=x.dtype, device=x.device).index_add_(0, g, pr[:, :, None] * px[:, None, :])
    u, _, vh = torch.linalg.svd(cov)
    sign = torch.sign(torch.linalg.det(vh.transpose(1, 2) @ u.transpose(1, 2)))
    fix = torch.ones(count, d, dtype=x.dtype, device=x.device)
    fix[:, -1] = torch.where(sign == 0, torch.ones_like(sign), sign)  # no reflections
    rotation = vh.transpose(1, 2) @ torch.diag_embed(fix) @ u.transpose(1, 2)  # maps reference -> prediction
    placed = centre_x[g] + (rotation[g] @ pr[:, :, None])[:, :, 0]
    out = pos.clone()
    out[members] = placed.to(pos.dtype)
    return out
