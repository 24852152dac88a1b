"""Radius search: all ordered pairs closer than a radius, filtered by masks, graphs and excluded edges.

A hashed cell list (`radius_kernels`) replaces the dense N x N distance matrix: memory O(N + P), time
O(N + P) for evenly spread points. A count pass sizes the output, a prefix sum places every receiver's run,
a fill pass writes it. No gradient flows: the result is integer indices.
"""

from __future__ import annotations

import math

import torch
import warp as wp

from . import radius_kernels as rk
from ._warp import as_warp, cpu_workers, launch, launch_many, split_range, warp_array

# Cells are a hair wider than the radius so that rounding in (x - lo) / cell can never separate two points
# closer than the radius by two cells; the exact test is the distance itself.
_CELL_MARGIN = 1.0 + 1e-6
_MIN_POINTS_PER_PART = 4096  # smaller searches stay on one thread
_MAX_CELLS_PER_AXIS = 2.0**30  # keeps float64 rounding of cell boxes below the 1e-6 margins


def radius_pairs(pos, radius, *, sender_mask=None, receiver_mask=None, exclude_edges=None, batch=None):
    """All ordered pairs (i -> j), i != j, with |pos_i - pos_j| < radius, as a LongTensor [2, P].

    Row 0 holds senders, row 1 receivers; the pairs are sorted by receiver, then by sender. The test is strict:
    points exactly `radius` apart are not paired (distances in float64 whatever the dtype of `pos`).
    Without masks the result is two-way: (i, j) comes with (j, i).

    Args:
        pos: [N, 2] or [N, 3] float32/float64 positions, CPU or CUDA (a gradient on it is ignored).
        radius: search radius, > 0 (0 gives no pairs; `math.inf` gives all pairs of each graph).
        sender_mask: [N] bool, only these points send (default: all).
        receiver_mask: [N] bool, only these points receive (default: all).
        exclude_edges: [2, E] (senders, receivers) pairs to leave out, e.g. the mesh edges when building
            MeshGraphNets world edges. Directed: pass both directions to exclude both.
        batch: [N] graph index of every point (any order); pairs never join two graphs.

    For pairs between two groups in both directions (HCMT contacts: obstacle <-> normal) use
    `contact_pairs(pos, radius, obstacle, normal)`.
    """
    n = _check_pos(pos)
    sends = torch.ones(n, dtype=torch.bool, device=pos.device)
    receives = torch.ones(n, dtype=torch.bool, device=pos.device)
    if sender_mask is not None:
        sends = _check_mask(sender_mask, n, "sender_mask").to(pos.device)
    if receiver_mask is not None:
        receives = _check_mask(receiver_mask, n, "receiver_mask").to(pos.device)
    role = sends.to(torch.uint8) * rk.SENDER | receives.to(torch.uint8) * rk.RECEIVER
    return _search(pos, radius, role, both_ways=False, exclude_edges=exclude_edges, batch=batch)


def contact_pairs(pos, radius, group_a, group_b, *, exclude_edges=None, batch=None):
    """Pairs closer than `radius` between group A and group B, both directions: A -> B and B -> A.

    This is HCMT's contact edge set with A = obstacle nodes, B = normal nodes. A point in both groups pairs
    with every other point of either group. Same output order and conventions as `radius_pairs`; equal to
    the union of `radius_pairs(..., sender_mask=a, receiver_mask=b)` and the call with the masks swapped.
    """
    n = _check_pos(pos)
    in_a = _check_mask(group_a, n, "group_a").to(pos.device)
    in_b = _check_mask(group_b, n, "group_b").to(pos.device)
    role = in_a.to(torch.uint8) * rk.SENDER | in_b.to(torch.uint8) * rk.RECEIVER
    return _search(pos, radius, role, both_ways=True, exclude_edges=exclude_edges, batch=batch)


def _search(pos, radius, role, *, both_ways, exclude_edges, batch):
    device = pos.device
    symmetric = both_ways or bool(torch.all((role == 0) | (role == rk.SENDER | rk.RECEIVER)))
    n = pos.shape[0]
    radius = _check_radius(radius)
    graph = _check_batch(batch, n, device)
    ex_ptr, ex_senders = _exclusion_csr(exclude_edges, n, device)
    empty = torch.empty((2, 0), dtype=torch.long, device=device)
    if n == 0 or radius == 0.0:
        return empty

    p, lo, hi = _positions(pos)
    extent = [b - a for a, b in zip(lo, hi)]
    # Cells at least the radius wide, and never so many per axis that float64 loses them (tiny radii;
    # the last bound keeps 1 / cell finite for subnormal radii).
    cell = max(radius * _CELL_MARGIN, max(extent) / _MAX_CELLS_PER_AXIS, 1e-300)
    inv_cell = 0.0 if math.isinf(cell) else 1.0 / cell

    # Symmetric relation: every point both sends and receives, or groups A <-> B. Then each pair is tested
    # once and emitted both ways; otherwise only senders enter the grid and receivers look them up.
    grid_role = (rk.SENDER | rk.RECEIVER) if symmetric else rk.SENDER
    grid_points = max(int(role.count_nonzero()), 1)
    span = [1 if inv_cell == 0.0 else int(x * inv_cell) + 1 for x in extent]
    if batch is None and math.prod(span) <= 4 * grid_points:
        table = 1 << (math.prod(span) - 1).bit_length()  # dense grid: one bucket per cell, no collisions
        span_arg = rk.vec3l(*span)
    else:
        table = 1 << grid_points.bit_length()  # hashed: power of two, load factor <= 1
        span_arg = rk.vec3l(0, 0, 0)
    grid = rk.Grid()
    grid.lo, grid.cell, grid.inv_cell, grid.mask, grid.span = wp.vec3d(*lo), cell, inv_cell, table - 1, span_arg
    cells = torch.empty((n, 3), dtype=torch.int64, device=device)
    bucket = torch.empty(n, dtype=torch.int32, device=device)
    launch(rk.locate, n, [as_warp(p, wp.vec3d), graph, role, grid_role, grid, as_warp(cells, rk.vec3l), bucket], device)
    order = torch.argsort(bucket, stable=True).to(torch.int32)
    pts, keep = _sorted_points(order, p, cells, graph, role, table)
    launch(rk.arrange, n, [bucket, as_warp(p, wp.vec3d), as_warp(cells, rk.vec3l), graph, role, grid, pts], device)

    # Parallel CPU launches over ranges of sorted points, each with its own counts (then its own cursors);
    # the result does not depend on the split, so a busy machine may use one thread.
    parts = split_range(n, cpu_workers(device, n, _MIN_POINTS_PER_PART, load_aware=True))
    part_counts = [torch.zeros(n, dtype=torch.int32, device=device) for _ in parts]
    # Dense buckets are already in spatial order; hashed ones are visited in cell order.
    visit = torch.arange(n, dtype=torch.int32, device=device) if span_arg[2] else _visit_order(keep["cells"])
    query = rk.Query()
    query.radius_sq, query.dim = radius * radius, pos.shape[1]
    query.symmetric, query.both_ways = int(symmetric), int(both_ways)
    query.ex_ptr, query.ex_senders = warp_array(ex_ptr), warp_array(ex_senders)
    common = [pts, grid, query, visit]
    launch_many(rk.neighbours, [(size, common + [first, _output(counts=c)])
                                for (first, size), c in zip(parts, part_counts)], device)
    counts = part_counts[0].clone()
    for extra in part_counts[1:]:
        counts += extra
    total = int(counts.sum(dtype=torch.int64))
    if total >= 2**31:
        raise ValueError(f"{total} pairs is more than 2^31: use a smaller radius or split the points")
    if total == 0:
        return empty
    offsets = torch.zeros(n + 1, dtype=torch.int32, device=device)
    offsets[1:] = torch.cumsum(counts, 0)
    cursors, start = [], offsets[:-1]
    for c in part_counts:  # range p writes after ranges 0 .. p-1 within every receiver's run
        cursors.append(start.clone())
        start = start + c
    out = torch.empty((2, total), dtype=torch.long, device=device)
    launch_many(rk.neighbours, [(size, common + [first, _output(cursor=cur, senders=out[0])])
                                for (first, size), cur in zip(parts, cursors)], device)
    launch_many(rk.finish, [(size, [first, offsets, out[0], out[1]]) for first, size in parts], device)
    return out


def _output(counts=None, cursor=None, senders=None):
    """`neighbours`' Output: the count pass gives `counts`, the fill pass `cursor` and `senders`."""
    out = rk.Output()
    out.fill = int(senders is not None)
    if counts is not None:
        out.counts = warp_array(counts)
    if senders is not None:
        out.cursor, out.senders = warp_array(cursor), warp_array(senders)
    return out


def _sorted_points(order, p, cells, graph, role, table):
    """The `Sorted` struct of `arrange`'s outputs, and the tensors behind its arrays (kept alive while in use)."""
    keep = {"order": order, "pos": torch.empty_like(p), "cells": torch.empty_like(cells),
            "graph": torch.empty_like(graph), "role": torch.empty_like(role),
            "bucket_start": torch.zeros(table, dtype=torch.int32, device=p.device),
            "bucket_end": torch.zeros(table, dtype=torch.int32, device=p.device)}
    pts = rk.Sorted()
    vector = {"pos": wp.vec3d, "cells": rk.vec3l}
    for name, tensor in keep.items():
        setattr(pts, name, warp_array(tensor, vector.get(name)))
    return pts, keep


def _visit_order(cells: torch.Tensor) -> torch.Tensor:
    """Positions in bucket order, visited cell after cell along z, then y, then x (neighbours share data)."""
    c = cells - cells.min(0).values
    span = c.max(0).values + 1
    if float(span[0]) * float(span[1]) * float(span[2]) < 2**62:
        key = (c[:, 0] * span[1] + c[:, 1]) * span[2] + c[:, 2]
    else:  # astronomically many cells: x alone still gives slabs of neighbours
        key = c[:, 0]
    return torch.argsort(key, stable=True).to(torch.int32)


def _positions(pos):
    """Positions as float64 [N, 3] (z = 0 in 2D) and their box (lo, hi as lists); NaN/inf raise."""
    n, device = pos.shape[0], pos.device
    p = torch.zeros((n, 3), dtype=torch.float64, device=device)
    if device.type == "cpu":  # one serial pass: cheaper than torch's threaded reductions on small arrays
        bounds = torch.empty((2, 3), dtype=torch.float64)
        bad = torch.zeros(1, dtype=torch.int32)
        launch(rk.PREPARE[wp.float32 if pos.dtype == torch.float32 else wp.float64], 1,
               [pos.detach().contiguous(), as_warp(p, wp.vec3d), as_warp(bounds, wp.vec3d), bad], device)
        finite = not bool(bad[0])
    else:
        p[:, : pos.shape[1]] = pos.detach()
        finite = bool(torch.isfinite(p).all())
        bounds = torch.stack([p.min(0).values, p.max(0).values])
    if not finite:
        raise ValueError("pos holds NaN or infinite values: radius search needs finite positions")
    lo, hi = bounds.tolist()
    return p, lo, hi


def _check_pos(pos) -> int:
    if not isinstance(pos, torch.Tensor) or pos.dim() != 2 or pos.shape[1] not in (2, 3):
        shape = tuple(pos.shape) if isinstance(pos, torch.Tensor) else type(pos).__name__
        raise ValueError(f"pos must be a [N, 2] or [N, 3] tensor, got {shape}")
    if pos.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"pos must be float32 or float64, got {pos.dtype}")
    return pos.shape[0]


def _check_radius(radius) -> float:
    radius = float(radius)
    if math.isnan(radius) or radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    return radius


def _check_mask(mask, n, name):
    if not isinstance(mask, torch.Tensor) or mask.shape != (n,):
        raise ValueError(f"{name} must be a [N] = [{n}] tensor of bools")
    return mask.bool()


def _check_batch(batch, n, device):
    if batch is None:
        return torch.zeros(n, dtype=torch.int32, device=device)
    if not isinstance(batch, torch.Tensor) or batch.shape != (n,) or batch.is_floating_point():
        raise ValueError(f"batch must be a [N] = [{n}] integer tensor of graph indices")
    if n and (int(batch.min()) < -(2**31) or int(batch.max()) >= 2**31):
        raise ValueError("batch graph indices must fit in int32")
    return batch.to(device=device, dtype=torch.int32).contiguous()


def _exclusion_csr(exclude_edges, n, device):
    """Excluded senders of every receiver, sorted, as (ptr [N+1], senders); never empty arrays for Warp."""
    ptr = torch.zeros(n + 1, dtype=torch.int32, device=device)
    if exclude_edges is None or exclude_edges.numel() == 0:
        return ptr, torch.zeros(1, dtype=torch.int32, device=device)
    if exclude_edges.dim() != 2 or exclude_edges.shape[0] != 2 or exclude_edges.is_floating_point():
        raise ValueError(f"exclude_edges must be a [2, E] integer tensor, got {tuple(exclude_edges.shape)}")
    ex = exclude_edges.to(device=device, dtype=torch.long)
    if int(ex.min()) < 0 or int(ex.max()) >= n:
        raise ValueError(f"exclude_edges holds node indices outside [0, {n})")
    keys = torch.unique(ex[1] * n + ex[0])  # sorted: by receiver, then sender
    ptr[1:] = torch.cumsum(torch.bincount(keys // n, minlength=n), 0)
    return ptr, (keys % n).to(torch.int32)
