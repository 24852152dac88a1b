"""The grid update and its boundary conditions: v_i = (m v)_i / m_i + dt g, then walls and colliders.

A node's conditions apply in a fixed order (the six walls, then planes, then spheres), each one linear in the
velocity (I, I - n n^T or 0), and `node_velocity` also returns which ones acted, so that the adjoint
(`adjoint.grid_adjoint_kernel`) can replay them transposed. `Grid` (one Warp struct) carries the step, the
spacing and the conditions into every kernel. `add_kernel` sums the per-thread grid copies of
the CPU-parallel scatters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import warp as wp

from .config import WALL_KINDS, MPMConfig
from .stencil import PAD, cell


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
class Grid:
    """The background grid of a run: its step and spacing, and what the grid update applies to a node's velocity
    besides dividing momentum by mass (kinds: WALL_KINDS). Every MPM kernel takes it."""

    dt: float  # time step
    dx: float  # node spacing; the domain is the unit cube
    res: int  # cells per side (res + 1 nodes, plus PAD on each side)
    clip_lo: float  # particle positions are clamped to [clip_lo, clip_hi] after G2P
    clip_hi: float
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
def particle_cell(xp: wp.vec3, grid: Grid):
    """Base node (array indices, padding included) and fractional position of a particle at xp (`stencil.cell`)."""
    return cell(xp, 1.0 / grid.dx, grid.res)


@wp.func
def condition_count(grid: Grid):
    return 6 + grid.plane_point.shape[0] + grid.sphere_center.shape[0]


@wp.func
def condition_normal(s: int, node: wp.vec3, grid: Grid):
    """Normal of boundary condition s: walls 0..5 (axis s/2, low side for even s), then planes, then spheres."""
    if s < 6:
        e = wp.vec3(0.0)
        e[s // 2] = 1.0 - 2.0 * float(s % 2)
        return e
    c = s - 6
    if c < grid.plane_normal.shape[0]:
        return grid.plane_normal[c]
    return wp.normalize(node * grid.dx - grid.sphere_center[c - grid.plane_normal.shape[0]])


@wp.func
def node_velocity(q: wp.vec4, node: wp.vec3, grid: Grid):
    """Velocity of a node with mass q[3] > 0 after gravity, walls and colliders, in that order; also a bit mask
    of the conditions that projected it (bit s = condition s of `condition_normal`) and whether one stopped
    it. That is all the adjoint needs: each condition acts linearly on the velocity (I, I - n n^T or 0)."""
    vel = wp.vec3(q[0], q[1], q[2]) / q[3] + grid.dt * grid.gravity
    mask = wp.int64(0)
    stopped = int(0)  # noqa: UP018 - Warp reassigns only typed locals inside loops
    for a in range(3):
        # Symmetric band: nodes 0..band-1 and res-band+1..res (and the padding) touch the walls.
        if node[a] < float(grid.band):
            vel, what = _boundary(vel, condition_normal(2 * a, node, grid), grid.wall)
            mask, stopped = _note(mask, stopped, what, 2 * a)
        if node[a] > float(grid.res - grid.band):
            vel, what = _boundary(vel, condition_normal(2 * a + 1, node, grid), grid.wall)
            mask, stopped = _note(mask, stopped, what, 2 * a + 1)
    pos = node * grid.dx
    for c in range(grid.plane_point.shape[0]):
        n = grid.plane_normal[c]
        if wp.dot(pos - grid.plane_point[c], n) < 0.0:
            vel, what = _boundary(vel, n, grid.plane_kind[c])
            mask, stopped = _note(mask, stopped, what, 6 + c)
    for c in range(grid.sphere_center.shape[0]):
        d = pos - grid.sphere_center[c]
        dist = wp.length(d)
        if dist < grid.sphere_radius[c] and dist > 0.0:
            vel, what = _boundary(vel, d / dist, grid.sphere_kind[c])
            mask, stopped = _note(mask, stopped, what, 6 + grid.plane_point.shape[0] + c)
    return vel, mask, stopped


@wp.kernel
def grid_kernel(
    grid_mv: wp.array(dtype=wp.vec4),
    grid: Grid,
    grid_v: wp.array(dtype=wp.vec3),
):
    # A flat launch over the (res+3)^3 nodes: an empty node (most of them) costs a load and a store.
    t = wp.tid()
    q = grid_mv[t]
    vel = wp.vec3(0.0)
    if q[3] > 0.0:
        vel, mask, stopped = node_velocity(q, node_coords(t, grid.res), grid)
    grid_v[t] = vel


@wp.kernel
def add_kernel(dst: wp.array(dtype=Any), src: wp.array(dtype=Any)):
    """dst += src, element by element (flat grid copies of one dtype)."""
    t = wp.tid()
    dst[t] = dst[t] + src[t]


for _t in (wp.vec3, wp.vec4):  # declared instances (momentum+mass copies, velocity adjoints): compiled ahead of time
    wp.overload(add_kernel, {"dst": wp.array(dtype=_t), "src": wp.array(dtype=_t)})


def make_grid(cfg: MPMConfig, device) -> Grid:
    """The Warp struct of `cfg`'s grid: step, spacing, clip box, gravity, walls and colliders on `device` (plane
    normals made unit)."""
    grid = Grid()
    grid.dt, grid.dx, grid.res = float(cfg.dt), float(cfg.dx), int(cfg.res)
    grid.clip_lo, grid.clip_hi = cfg.clip * cfg.dx, 1.0 - cfg.clip * cfg.dx
    grid.gravity = wp.vec3(*cfg.gravity)
    grid.wall = WALL_KINDS[cfg.wall]
    grid.band = int(cfg.wall_band)
    unit = [np.asarray(p.normal, np.float32) / np.linalg.norm(p.normal) for p in cfg.planes]
    grid.plane_point = wp.array([p.point for p in cfg.planes], dtype=wp.vec3, device=device)
    grid.plane_normal = wp.array(unit, dtype=wp.vec3, device=device)
    grid.plane_kind = wp.array([WALL_KINDS[p.kind] for p in cfg.planes], dtype=int, device=device)
    grid.sphere_center = wp.array([s.center for s in cfg.spheres], dtype=wp.vec3, device=device)
    grid.sphere_radius = wp.array([s.radius for s in cfg.spheres], dtype=float, device=device)
    grid.sphere_kind = wp.array([WALL_KINDS[s.kind] for s in cfg.spheres], dtype=int, device=device)
    return grid
