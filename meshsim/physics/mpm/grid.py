"""The grid update and its boundary conditions: v_i = (m v)_i / m_i + dt g, then walls and colliders.

A node's conditions apply in a fixed order (the six walls, then planes, then spheres), each one linear in the
velocity (I, I - n n^T or 0), and `node_velocity` also returns which ones acted, so that the adjoint
(`adjoint.grid_adjoint_kernel`) can replay them transposed. `add_kernel` sums the per-thread grid copies of
the CPU-parallel scatters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import warp as wp

from .config import WALL_KINDS, MPMConfig
from .stencil import PAD


@wp.func
def _boundary(vel: wp.vec3, n: wp.vec3, kind: int):
    """free_slip (0): drop the velocity component into the wall; no_slip (1): stop a node moving into the
    wall; sticky (2): stop every node in contact. Nodes moving away are free in the first two.
    Also returns what happened: 0 untouched, 1 projected (free slip), 2 stopped."""
    if kind == 2:
        return wp.vec3(0.0), 2
    vn = wp.dot(vel, n)
    if vn < 0.0:
        if kind == 1:
            return wp.vec3(0.0), 2
        return vel - vn * n, 1
    return vel, 0


@wp.func
def _note(mask: wp.int64, stopped: int, what: int, s: int):
    """Record condition s's outcome: bit s of mask when it projected, stopped when it stopped the node."""
    if what == 1:
        mask = mask | (wp.int64(1) << wp.int64(s))
    if what == 2:
        stopped = 1
    return mask, stopped


@wp.func
def node_coords(t: int, res: int):
    """Grid coordinates (padding removed) of flat node index t of the (res + 1 + 2 PAD)^3 grid."""
    side = res + 1 + 2 * PAD
    return wp.vec3(float(t // (side * side) - PAD), float((t // side) % side - PAD), float(t % side - PAD))


@wp.struct
class GridConditions:
    """What the grid update applies to a node's velocity besides dividing momentum by mass (kinds: WALL_KINDS)."""

    gravity: wp.vec3
    wall: int  # kind of the six domain walls
    band: int  # nodes within this many cells of a face obey the wall
    plane_point: wp.array(dtype=wp.vec3)
    plane_normal: wp.array(dtype=wp.vec3)  # unit
    plane_kind: wp.array(dtype=int)
    sphere_center: wp.array(dtype=wp.vec3)
    sphere_radius: wp.array(dtype=float)
    sphere_kind: wp.array(dtype=int)


@wp.func
def condition_count(bc: GridConditions):
    return 6 + bc.plane_point.shape[0] + bc.sphere_center.shape[0]


@wp.func
def condition_normal(s: int, node: wp.vec3, dx: float, bc: GridConditions):
    """Normal of boundary condition s: walls 0..5 (axis s/2, low side for even s), then planes, then spheres."""
    if s < 6:
        e = wp.vec3(0.0)
        e[s // 2] = 1.0 - 2.0 * float(s % 2)
        return e
    c = s - 6
    if c < bc.plane_normal.shape[0]:
        return bc.plane_normal[c]
    return wp.normalize(node * dx - bc.sphere_center[c - bc.plane_normal.shape[0]])


@wp.func
def node_velocity(q: wp.vec4, node: wp.vec3, dt: float, dx: float, res: int, bc: GridConditions):
    """Velocity of a node with mass q[3] > 0 after gravity, walls and colliders, in that order; also a bit mask
    of the conditions that projected it (bit s = condition s of `condition_normal`) and whether one stopped
    it. That is all the adjoint needs: each condition acts linearly on the velocity (I, I - n n^T or 0)."""
    vel = wp.vec3(q[0], q[1], q[2]) / q[3] + dt * bc.gravity
    mask = wp.int64(0)
    stopped = int(0)  # noqa: UP018 - Warp reassigns only typed locals inside loops
    for a in range(3):
        # Symmetric band: nodes 0..band-1 and res-band+1..res (and the padding) touch the walls.
        if node[a] < float(bc.band):
            vel, what = _boundary(vel, condition_normal(2 * a, node, dx, bc), bc.wall)
            mask, stopped = _note(mask, stopped, what, 2 * a)
        if node[a] > float(res - bc.band):
            vel, what = _boundary(vel, condition_normal(2 * a + 1, node, dx, bc), bc.wall)
            mask, stopped = _note(mask, stopped, what, 2 * a + 1)
    pos = node * dx
    for c in range(bc.plane_point.shape[0]):
        n = bc.plane_normal[c]
        if wp.dot(pos - bc.plane_point[c], n) < 0.0:
            vel, what = _boundary(vel, n, bc.plane_kind[c])
            mask, stopped = _note(mask, stopped, what, 6 + c)
    for c in range(bc.sphere_center.shape[0]):
        d = pos - bc.sphere_center[c]
        dist = wp.length(d)
        if dist < bc.sphere_radius[c] and dist > 0.0:
            vel, what = _boundary(vel, d / dist, bc.sphere_kind[c])
            mask, stopped = _note(mask, stopped, what, 6 + bc.plane_point.shape[0] + c)
    return vel, mask, stopped


@wp.kernel
def grid_kernel(
    grid_mv: wp.array(dtype=wp.vec4),
    dt: float,
    dx: float,
    res: int,
    bc: GridConditions,
    grid_v: wp.array(dtype=wp.vec3),
):
    # A flat launch over the (res+3)^3 nodes: an empty node (most of them) costs a load and a store.
    t = wp.tid()
    q = grid_mv[t]
    vel = wp.vec3(0.0)
    if q[3] > 0.0:
        vel, mask, stopped = node_velocity(q, node_coords(t, res), dt, dx, res, bc)
    grid_v[t] = vel


@wp.kernel
def add_kernel(dst: wp.array(dtype=Any), src: wp.array(dtype=Any)):
    """dst += src, element by element (flat grid copies of one dtype)."""
    t = wp.tid()
    dst[t] = dst[t] + src[t]


for _t in (wp.vec3, wp.vec4):  # declared instances (momentum+mass copies, velocity adjoints): compiled ahead of time
    wp.overload(add_kernel, {"dst": wp.array(dtype=_t), "src": wp.array(dtype=_t)})


def grid_conditions(cfg: MPMConfig, device) -> GridConditions:
    """The Warp struct of `cfg`'s gravity, walls and colliders on `device` (plane normals made unit)."""
    bc = GridConditions()
    bc.gravity = wp.vec3(*cfg.gravity)
    bc.wall = WALL_KINDS[cfg.wall]
    bc.band = int(cfg.wall_band)
    unit = [np.asarray(p.normal, np.float32) / np.linalg.norm(p.normal) for p in cfg.planes]
    bc.plane_point = wp.array([p.point for p in cfg.planes], dtype=wp.vec3, device=device)
    bc.plane_normal = wp.array(unit, dtype=wp.vec3, device=device)
    bc.plane_kind = wp.array([WALL_KINDS[p.kind] for p in cfg.planes], dtype=int, device=device)
    bc.sphere_center = wp.array([s.center for s in cfg.spheres], dtype=wp.vec3, device=device)
    bc.sphere_radius = wp.array([s.radius for s in cfg.spheres], dtype=float, device=device)
    bc.sphere_kind = wp.array([WALL_KINDS[s.kind] for s in cfg.spheres], dtype=int, device=device)
    return bc
