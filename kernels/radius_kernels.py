"""Warp kernels of the radius search: a hashed cell list (cell side >= radius), counted then filled.

Points live in cells of side `cell >= radius`; a cell (cx, cy, cz, graph) is hashed into a table of
power-of-two size and the points are sorted by bucket, so a bucket is one contiguous run. Distinct cells can
share a bucket, so every candidate is checked against its own cell (and graph): each pair is seen once, and
nothing is lost to collisions. The candidates of a point are the 3^d cells around its own, less the cells
whose box is farther than the radius.

Two ways to visit pairs. Symmetric search (senders = receivers, or group A <-> group B): the thread of
sorted point t looks only at later points (slot > t) and emits both directions, so each pair is tested once.
One-sided search (different sender and receiver masks): only senders are in the grid and the thread of a
receiver looks at all of them. Emitting goes through per-receiver cursors (atomic on GPU), so a last pass
sorts every receiver's run by sender: the output is the same whatever the thread schedule.

All positions are float64 and 3-vectors (z = 0 in 2D), so the distance test is the same on CPU and CUDA.
"""

from __future__ import annotations

from typing import Any

import warp as wp

wp.set_module_options({"enable_backward": False})  # integer outputs, nothing to differentiate

vec3l = wp.types.vector(length=3, dtype=wp.int64)

SENDER = 1  # role bits of a point
RECEIVER = 2


@wp.func
def cell_hash(c: vec3l, graph: wp.int32, mask: wp.int64, span: vec3l) -> wp.int32:
    """Bucket of a cell. Dense grid (span[2] > 0, one graph, table >= cells): the row-major cell index, so
    neighbouring cells are neighbouring buckets. Otherwise large odd multipliers mixed by xor (Teschner et
    al. 2003). Both cut to the table size; cells outside the grid land in some bucket and match nothing.
    """
    if span[2] > wp.int64(0):
        return wp.int32(((c[0] * span[1] + c[1]) * span[2] + c[2]) & mask)
    key = (c[0] * wp.int64(73856093)) ^ (c[1] * wp.int64(19349663)) ^ (c[2] * wp.int64(83492791))
    key = key ^ (wp.int64(graph) * wp.int64(2654435761))
    return wp.int32(key & mask)


@wp.kernel
def prepare(
    pos: wp.array2d(dtype=Any),
    p: wp.array(dtype=wp.vec3d),
    bounds: wp.array(dtype=wp.vec3d),
    bad: wp.array(dtype=wp.int32),
):
    """One thread (CPU): positions as float64 3-vectors (z = 0 in 2D), their box, and a flag for NaN/inf.

    One serial pass instead of several multi-threaded torch reductions over tiny arrays.
    """
    lo = wp.vec3d(0.0, 0.0, 0.0)
    hi = wp.vec3d(0.0, 0.0, 0.0)
    for i in range(pos.shape[0]):
        x = wp.vec3d(0.0, 0.0, 0.0)
        for a in range(pos.shape[1]):
            x[a] = wp.float64(pos[i, a])
            if not wp.isfinite(x[a]):
                bad[0] = 1
        p[i] = x
        if i == 0:
            lo = x
            hi = x
        lo = wp.min(lo, x)
        hi = wp.max(hi, x)
    bounds[0] = lo
    bounds[1] = hi


PREPARE = {dtype: wp.overload(prepare, {"pos": wp.array2d(dtype=dtype)}) for dtype in (wp.float32, wp.float64)}


@wp.struct
class Grid:
    """The cell list: the cells' origin and side, and the table that hashes them (`cell_hash`)."""

    lo: wp.vec3d
    cell: wp.float64
    inv_cell: wp.float64  # 1 / cell, 0 when the cell is infinite (every point in one cell)
    mask: wp.int64
    span: vec3l


@wp.kernel
def locate(
    pos: wp.array(dtype=wp.vec3d),
    graph: wp.array(dtype=wp.int32),
    role: wp.array(dtype=wp.uint8),
    grid_role: wp.int32,
    grid: Grid,
    cells: wp.array(dtype=vec3l),
    bucket: wp.array(dtype=wp.int32),
):
    """Cell of every point; the bucket of the points that go into the grid (the others sort last)."""
    i = wp.tid()
    d = pos[i] - grid.lo
    c = vec3l()
    for a in range(3):
        c[a] = wp.int64(wp.floor(d[a] * grid.inv_cell))
    cells[i] = c
    if wp.int32(role[i]) & grid_role != 0:
        bucket[i] = cell_hash(c, graph[i], grid.mask, grid.span)
    else:
        bucket[i] = wp.int32(grid.mask + wp.int64(1))


@wp.struct
class Sorted:
    """The points in bucket order, so that a bucket's candidates are one contiguous run [start, end)."""

    order: wp.array(dtype=wp.int32)  # sorted slot -> point
    pos: wp.array(dtype=wp.vec3d)
    cells: wp.array(dtype=vec3l)
    graph: wp.array(dtype=wp.int32)
    role: wp.array(dtype=wp.uint8)
    bucket_start: wp.array(dtype=wp.int32)
    bucket_end: wp.array(dtype=wp.int32)


@wp.kernel
def arrange(
    bucket: wp.array(dtype=wp.int32),
    pos: wp.array(dtype=wp.vec3d),
    cells: wp.array(dtype=vec3l),
    graph: wp.array(dtype=wp.int32),
    role: wp.array(dtype=wp.uint8),
    grid: Grid,
    out: Sorted,
):
    """Copy the points in `out.order` (bucket order) and mark the bucket runs."""
    t = wp.tid()
    n = out.order.shape[0]
    i = out.order[t]
    out.pos[t] = pos[i]
    out.cells[t] = cells[i]
    out.graph[t] = graph[i]
    out.role[t] = role[i]
    b = bucket[i]
    if wp.int64(b) <= grid.mask:
        if t == 0 or bucket[out.order[t - 1]] != b:
            out.bucket_start[b] = t
        if t == n - 1 or bucket[out.order[t + 1]] != b:
            out.bucket_end[b] = t + 1


@wp.func
def sift_down(a: wp.array(dtype=wp.int64), base: int, root: int, n: int):
    while 2 * root + 1 < n:
        child = 2 * root + 1
        if child + 1 < n and a[base + child] < a[base + child + 1]:
            child += 1
        if a[base + root] >= a[base + child]:
            return
        tmp = a[base + root]
        a[base + root] = a[base + child]
        a[base + child] = tmp
        root = child


@wp.func
def sort_segment(a: wp.array(dtype=wp.int64), base: int, n: int):
    """In-place ascending sort of a[base:base+n]: insertion sort when short, heapsort (O(n log n)) when long."""
    if n <= 32:
        for x in range(base + 1, base + n):
            key = a[x]
            y = x - 1
            while y >= base and a[y] > key:
                a[y + 1] = a[y]
                y -= 1
            a[y + 1] = key
        return
    for root in range(n // 2 - 1, -1, -1):
        sift_down(a, base, root, n)
    for end in range(n - 1, 0, -1):
        tmp = a[base]
        a[base] = a[base + end]
        a[base + end] = tmp
        sift_down(a, base, 0, end)


@wp.func
def cell_gap_sq(p: wp.vec3d, c: vec3l, lo: wp.vec3d, cell: wp.float64, slack: wp.float64) -> wp.float64:
    """Squared distance from p to the box of cell c, the box widened by `slack` against rounding."""
    gap = wp.float64(0.0)
    for a in range(3):
        low = lo[a] + wp.float64(c[a]) * cell - slack
        high = low + cell + slack + slack
        d = wp.max(wp.max(low - p[a], p[a] - high), wp.float64(0.0))
        gap += d * d
    return gap


@wp.func
def allowed(role_s: wp.int32, role_r: wp.int32, both_ways: wp.int32) -> bool:
    """May a point of role_s send to one of role_r? Directed: sender bit -> receiver bit. Both ways: A <-> B."""
    forward = role_s & SENDER != 0 and role_r & RECEIVER != 0
    if both_ways != 0:
        return forward or (role_s & RECEIVER != 0 and role_r & SENDER != 0)
    return forward


@wp.struct
class Query:
    """The pairs wanted: closer than the radius, roles allowed (`allowed`), not excluded (`is_excluded`)."""

    radius_sq: wp.float64
    dim: wp.int32  # 2: the z range of candidate cells is the point's own
    symmetric: wp.int32  # 1: the thread of sorted point t tests later points only and emits both directions
    both_ways: wp.int32
    ex_ptr: wp.array(dtype=wp.int32)  # excluded senders of receiver j: ex_senders[ex_ptr[j] .. ex_ptr[j+1] - 1]
    ex_senders: wp.array(dtype=wp.int32)


@wp.func
def is_excluded(query: Query, j: int, i: int) -> bool:
    """Binary search of sender i among the excluded senders of receiver j (sorted)."""
    a = query.ex_ptr[j]
    b = query.ex_ptr[j + 1]
    while a < b:
        m = (a + b) // 2
        x = query.ex_senders[m]
        if x == i:
            return True
        if x < i:
            a = m + 1
        else:
            b = m
    return False


@wp.struct
class Output:
    """Where `emit` puts a pair: counted per receiver (fill = 0), or its sender written at the receiver's cursor."""

    fill: wp.int32
    counts: wp.array(dtype=wp.int32)
    cursor: wp.array(dtype=wp.int32)
    senders: wp.array(dtype=wp.int64)


@wp.func
def emit(sender: int, receiver: int, out: Output):
    if out.fill == 0:
        wp.atomic_add(out.counts, receiver, 1)
    else:
        out.senders[wp.atomic_add(out.cursor, receiver, 1)] = wp.int64(sender)


@wp.kernel
def neighbours(
    pts: Sorted, grid: Grid, query: Query, visit: wp.array(dtype=wp.int32), first: wp.int32, out: Output
):
    """Pairs of sorted point t: count them per receiver (out.fill = 0) or write their senders (out.fill = 1).

    Threads take the points in `visit` order (cell by cell through space, so the buckets a thread reads
    are still in cache from its predecessors); a launch covers visit[first .. first + dim - 1]. Parallel
    launches get their own counts and cursors (their counts set where in each receiver's run they write).
    """
    t = visit[first + wp.tid()]
    rt = wp.int32(pts.role[t])
    if rt == 0 or (query.symmetric == 0 and rt & RECEIVER == 0):
        return
    j = pts.order[t]
    pt = pts.pos[t]
    ct = pts.cells[t]
    gt = pts.graph[t]
    # Prune cells whose box is beyond the radius (widened a little: rounding must never prune a pair).
    prune = wp.isfinite(grid.cell)
    slack = wp.float64(1e-6) * grid.cell
    reach_sq = query.radius_sq * wp.float64(1.0 + 1e-9)
    # Loop bounds are variables on purpose: constant ranges would be unrolled into 9 copies of the
    # candidate loop, and the bigger code runs slower.
    reach = 1
    z_reach = reach
    if query.dim == 2:
        z_reach = 0
    for dx in range(-reach, reach + 1):
        for dy in range(-reach, reach + 1):
            for dz in range(-z_reach, z_reach + 1):
                c = vec3l(ct[0] + wp.int64(dx), ct[1] + wp.int64(dy), ct[2] + wp.int64(dz))
                if prune and cell_gap_sq(pt, c, grid.lo, grid.cell, slack) >= reach_sq:
                    continue
                b = cell_hash(c, gt, grid.mask, grid.span)
                first = pts.bucket_start[b]
                if query.symmetric != 0:
                    first = wp.max(first, t + 1)  # each unordered pair once, by its first point
                for slot in range(first, pts.bucket_end[b]):
                    if wp.length_sq(pts.pos[slot] - pt) >= query.radius_sq:
                        continue
                    cs = pts.cells[slot]
                    if cs[0] != c[0] or cs[1] != c[1] or cs[2] != c[2] or pts.graph[slot] != gt or slot == t:
                        continue  # another cell or graph hashed into the same bucket
                    rs = wp.int32(pts.role[slot])
                    i = pts.order[slot]
                    if allowed(rs, rt, query.both_ways):
                        if query.ex_ptr[j + 1] == query.ex_ptr[j] or not is_excluded(query, j, i):
                            emit(i, j, out)
                    if query.symmetric != 0 and allowed(rt, rs, query.both_ways):
                        if query.ex_ptr[i + 1] == query.ex_ptr[i] or not is_excluded(query, i, j):
                            emit(j, i, out)


@wp.kernel
def finish(
    first: wp.int32,
    offsets: wp.array(dtype=wp.int32),
    out_senders: wp.array(dtype=wp.int64),
    out_receivers: wp.array(dtype=wp.int64),
):
    """Sort the senders of receiver j by index and write j beside them."""
    j = first + wp.tid()
    base = offsets[j]
    n = offsets[j + 1] - base
    sort_segment(out_senders, base, n)
    for x in range(base, base + n):
        out_receivers[x] = wp.int64(j)
