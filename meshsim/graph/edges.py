"""Edge sets of the mesh graph: HCMT contact edges, MGN world edges, their features (mesh edges come from
`meshsim.mesh.edges_from_cells`).

Convention everywhere: `edge_index [2, E]` holds (senders, receivers); messages flow sender -> receiver and
edge offsets are `x[sender] - x[receiver]`.
"""

from __future__ import annotations

import torch

from meshsim.datasets.schema import NodeType


def edge_offsets(pos: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """[dx, |dx|] with dx = pos[sender] - pos[receiver]: [E, d + 1]."""
    dx = pos[edge_index[0]] - pos[edge_index[1]]
    return torch.cat([dx, dx.norm(dim=-1, keepdim=True)], dim=-1)


def mesh_edge_features(world_pos: torch.Tensor, mesh_pos: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """[dx_world, |dx_world|, dx_mesh, |dx_mesh|]: [E, 2d + 2]."""
    return torch.cat([edge_offsets(world_pos, edge_index), edge_offsets(mesh_pos, edge_index)], dim=-1)


def radius_pairs_reference(
    pos: torch.Tensor,
    radius: float,
    *,
    sender_mask: torch.Tensor | None = None,
    receiver_mask: torch.Tensor | None = None,
    exclude_edges: torch.Tensor | None = None,
    batch: torch.Tensor | None = None,
    chunk: int = 4096,
) -> torch.Tensor:
    """All (sender, receiver) with |pos[s] - pos[r]| < radius, s != r, same `batch`; [2, P] sorted.

    Composed torch (chunked dense distances): the oracle and fallback for `meshsim.kernels.radius_pairs`.
    Masks restrict who may send / receive; pairs listed in `exclude_edges` [2, X] are removed.
    """
    n = pos.shape[0]
    device = pos.device
    all_nodes = torch.arange(n, device=device)
    senders = all_nodes if sender_mask is None else all_nodes[sender_mask]
    receivers = all_nodes if receiver_mask is None else all_nodes[receiver_mask]
    found = []
    for start in range(0, senders.numel(), chunk):
        s = senders[start : start + chunk]
        close = torch.cdist(pos[s].double(), pos[receivers].double()) < radius
        if batch is not None:
            close &= batch[s][:, None] == batch[receivers][None, :]
        si, ri = close.nonzero(as_tuple=True)
        found.append(torch.stack([s[si], receivers[ri]]))
    pairs = torch.cat(found, dim=1) if found else torch.empty(2, 0, dtype=torch.int64, device=device)
    pairs = pairs[:, pairs[0] != pairs[1]]
    key = pairs[0] * n + pairs[1]
    if exclude_edges is not None and exclude_edges.numel():
        key = key[~torch.isin(key, exclude_edges[0].to(device) * n + exclude_edges[1].to(device))]
    key = torch.unique(key)
    return torch.stack([key // n, key % n])


def radius_pairs(pos: torch.Tensor, radius: float, **kwargs) -> torch.Tensor:
    """Neighbour search through `meshsim.kernels.radius_pairs` when available, else the torch reference."""
    try:
        from meshsim.kernels import radius_pairs as kernel
    except ImportError:
        kernel = None
    if kernel is None or pos.dtype not in (torch.float32, torch.float64):
        return radius_pairs_reference(pos, radius, **kwargs)
    return kernel(pos, radius, **kwargs)


def contact_edges(
    world_pos: torch.Tensor, node_type: torch.Tensor, radius: float, batch: torch.Tensor | None = None
) -> torch.Tensor:
    """HCMT contact edges: OBSTACLE <-> NORMAL pairs closer than `radius`, both directions, [2, C]."""
    obstacle = node_type == NodeType.OBSTACLE
    normal = node_type == NodeType.NORMAL
    if not bool(obstacle.any()) or not bool(normal.any()):
        return torch.empty(2, 0, dtype=torch.int64, device=world_pos.device)
    one_way = radius_pairs(world_pos, radius, sender_mask=obstacle, receiver_mask=normal, batch=batch)
    both = torch.cat([one_way, one_way.flip(0)], dim=1)
    order = torch.argsort(both[0] * world_pos.shape[0] + both[1])
    return both[:, order]


def world_edges(
    world_pos: torch.Tensor, mesh_edges: torch.Tensor, radius: float, batch: torch.Tensor | None = None
) -> torch.Tensor:
    """MGN world edges: all node pairs closer than `radius` in world space that are not mesh edges, [2, W]."""
    return radius_pairs(world_pos, radius, exclude_edges=mesh_edges, batch=batch)
