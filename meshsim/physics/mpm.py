"""Explicit MLS-MPM on a regular grid in Warp: quadratic B-splines, APIC transfer, walls and colliders.

One step maps particle state (x, v, C, F) and a Kirchhoff stress tau per particle to the next state:

    P2G    grid (m v, m) += w (m_p v_p + (-dt V_p 4/dx^2 tau_p + m_p C_p) (x_i - x_p)),  grid m += w m_p
    grid   v_i = (m v)_i / m_i + dt g, then wall and collider conditions
    G2P    v_p = sum w v_i,  C_p = 4/dx^2 sum w v_i (x_i - x_p)^T,  F_p <- (I + dt C_p) F_p,  x_p += dt v_p

The domain is [0, 1]^3 with `res` cells per side (dx = 1/res). Base indices use floor() of a clamped position
and the grid is padded by one node on each side, so every index a kernel touches is inside its array, even for
particles on the domain edge or with non-finite positions. The stress comes from outside (any callable
F -> tau), which keeps this module free of material laws; `meshsim.physics.mpm_bridge` makes a step
differentiable for PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
import warp as wp

from meshsim.errors import ConfigError
from meshsim.kernels import init_warp
from meshsim.kernels._warp import run_parallel, split_range

WALL_KINDS = {"free_slip": 0, "no_slip": 1, "sticky": 2}
PAD = 1  # padding nodes on each side of the grid: floor(x/dx - 0.5) >= -1 for x >= 0
MAX_COLLIDERS = 58  # 6 walls + colliders fit the 64-bit mask of boundary conditions the grid adjoint replays
# A particle range worth its own CPU thread: its share of the kernels must beat a thread's wake-up (~80 us) and
# the zeroing and summing of its own two grid copies (~1 us per 1,000 nodes, measured on a 32^3 grid).
PARTICLES_PER_THREAD = 2048
PARTICLES_PER_THREAD_PER_NODE = 1 / 16  # on top, per node of the grid (res 64: ~21k particles per range)
NODES_PER_THREAD = 1 << 17  # summing grid copies is a light pass over memory: threads pay off on large grids


@dataclass
class PlaneCollider:
    """Half-space {x : (x - point) . normal < 0} is solid; `normal` points into the free side."""

    point: tuple[float, float, float]
    normal: tuple[float, float, float]
    kind: str = "free_slip"


@dataclass
class SphereCollider:
    """A solid ball at `center` with `radius`."""

    center: tuple[float, float, float]
    radius: float
    kind: str = "free_slip"


@dataclass
class MPMConfig:
    """Grid, time step and boundary set-up of one simulation."""

    res: int = 20  # cells per side of the unit cube
    dt: float = 5e-4  # seconds per step
    gravity: tuple[float, float, float] = (0.0, -9.8, 0.0)
    wall: str = "free_slip"  # free_slip | no_slip | sticky (see `_boundary`)
    wall_band: int = 3  # nodes within this many cells of a face obey the wall condition (same on both sides)
    clip: float = 0.5  # particle positions are clamped to [clip dx, 1 - clip dx]
    planes: list[PlaneCollider] = field(default_factory=list)
    spheres: list[SphereCollider] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.res < 4:
            raise ConfigError(f"mpm.res must be >= 4 cells per side, got {self.res}")
        if not self.dt > 0:
            raise ConfigError(f"mpm.dt must be > 0 seconds, got {self.dt}")
        if self.wall not in WALL_KINDS:
            raise ConfigError(f"mpm.wall must be one of {', '.join(WALL_KINDS)}, got {self.wall!r}")
        if not 0 <= self.wall_band < self.res // 2:
            raise ConfigError(f"mpm.wall_band must be in [0, res/2), got {self.wall_band}")
        if not 0 <= self.clip <= self.wall_band + 0.5:
            raise ConfigError(f"mpm.clip must be in [0, wall_band + 0.5] cells, got {self.clip}")
        for c in [*self.planes, *self.spheres]:
            if c.kind not in WALL_KINDS:
                raise ConfigError(f"collider kind must be one of {', '.join(WALL_KINDS)}, got {c.kind!r}")
        if len(self.planes) + len(self.spheres) > MAX_COLLIDERS:
            raise ConfigError(f"at most {MAX_COLLIDERS} colliders (planes + spheres), got "
                              f"{len(self.planes) + len(self.spheres)}")
        for s in self.spheres:
            if not s.radius > 0:
                raise ConfigError(f"sphere collider radius must be > 0, got {s.radius}")
        for p in self.planes:
            if np.linalg.norm(p.normal) == 0:
                raise ConfigError("plane collider normal must be non-zero")

    @property
    def dx(self) -> float:
        return 1.0 / self.res


# --------------------------------------------------------------------------------------------- kernels


@wp.func
def _cell(xp: wp.vec3, inv_dx: float, res: int):
    """Base node (floor, clamped to [-1, res-1]) and fractional offset in [0.5, 1.5] (for clamped x)."""
    hi = float(res) - 1.0
    g = xp * inv_dx - wp.vec3(0.5)
    b = wp.vec3(
        wp.floor(wp.clamp(g[0], -1.0, hi)), wp.floor(wp.clamp(g[1], -1.0, hi)), wp.floor(wp.clamp(g[2], -1.0, hi))
    )
    return b, xp * inv_dx - b


@wp.func
def _weights(fx: wp.vec3):
    """Quadratic B-spline weights of the three nodes along each axis: rows = node 0, 1, 2."""
    w0 = 0.5 * wp.cw_mul(wp.vec3(1.5) - fx, wp.vec3(1.5) - fx)
    d1 = fx - wp.vec3(1.0)
    w1 = wp.vec3(0.75) - wp.cw_mul(d1, d1)
    d2 = fx - wp.vec3(0.5)
    w2 = 0.5 * wp.cw_mul(d2, d2)
    return wp.matrix_from_rows(w0, w1, w2)


@wp.kernel
def p2g_kernel(
    x: wp.array(dtype=wp.vec3),
    v: wp.array(dtype=wp.vec3),
    C: wp.array(dtype=wp.mat33),
    tau: wp.array(dtype=wp.mat33),
    mass: wp.array(dtype=float),
    vol: wp.array(dtype=float),
    dt: float,
    dx: float,
    res: int,
    grid_mv: wp.array3d(dtype=wp.vec4),
):
    p = wp.tid()
    inv_dx = 1.0 / dx
    b, fx = _cell(x[p], inv_dx, res)
    w = _weights(fx)
    m = mass[p]
    affine = (-dt * vol[p] * 4.0 * inv_dx * inv_dx) * tau[p] + m * C[p]
    mv = m * v[p]
    bi = int(b[0]) + PAD
    bj = int(b[1]) + PAD
    bk = int(b[2]) + PAD
    # affine (x_i - x_p) = dx (i a0 + j a1 + k a2) - affine fx dx with a_c the columns of affine: built up
    # one axis per loop level by adding a_c, so the innermost body is a few adds (same sum, fewer flops).
    a0 = dx * wp.vec3(affine[0, 0], affine[1, 0], affine[2, 0])
    a1 = dx * wp.vec3(affine[0, 1], affine[1, 1], affine[2, 1])
    a2 = dx * wp.vec3(affine[0, 2], affine[1, 2], affine[2, 2])
    qi = mv - affine * (fx * dx)
    for i in range(3):
        qij = qi
        for j in range(3):
            wij = w[i, 0] * w[j, 1]
            qk = qij
            for k in range(3):
                weight = wij * w[k, 2]
                q = weight * qk
                wp.atomic_add(grid_mv, bi + i, bj + j, bk + k, wp.vec4(q[0], q[1], q[2], weight * m))
                qk = qk + a2
            qij = qij + a1
        qi = qi + a0


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
def _node(t: int, side: int):
    """Grid coordinates (padding removed) of flat node index t."""
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
def _condition_count(bc: GridConditions):
    return 6 + bc.plane_point.shape[0] + bc.sphere_center.shape[0]


@wp.func
def _condition_normal(s: int, node: wp.vec3, dx: float, bc: GridConditions):
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
def _node_velocity(q: wp.vec4, node: wp.vec3, dt: float, dx: float, res: int, bc: GridConditions):
    """Velocity of a node with mass q[3] > 0 after gravity, walls and colliders, in that order; also a bit mask
    of the conditions that projected it (bit s = condition s of `_condition_normal`) and whether one stopped
    it. That is all the adjoint needs: each condition acts linearly on the velocity (I, I - n n^T or 0)."""
    vel = wp.vec3(q[0], q[1], q[2]) / q[3] + dt * bc.gravity
    mask = wp.int64(0)
    stopped = int(0)  # noqa: UP018 - Warp reassigns only typed locals inside loops
    for a in range(3):
        # Symmetric band: nodes 0..band-1 and res-band+1..res (and the padding) touch the walls.
        if node[a] < float(bc.band):
            vel, what = _boundary(vel, _condition_normal(2 * a, node, dx, bc), bc.wall)
            mask, stopped = _note(mask, stopped, what, 2 * a)
        if node[a] > float(res - bc.band):
            vel, what = _boundary(vel, _condition_normal(2 * a + 1, node, dx, bc), bc.wall)
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
    side: int,
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
        vel, mask, stopped = _node_velocity(q, _node(t, side), dt, dx, res, bc)
    grid_v[t] = vel


@wp.func
def _gather_line(grid_v: wp.array3d(dtype=wp.vec3), i: int, j: int, k: int, wz: wp.vec3):
    """sum_k w_k v and sum_k k w_k v over the nodes (i, j, k..k+2)."""
    g1 = wz[1] * grid_v[i, j, k + 1]
    g2 = wz[2] * grid_v[i, j, k + 2]
    return wz[0] * grid_v[i, j, k] + g1 + g2, g1 + 2.0 * g2


@wp.func
def _gather_plane(grid_v: wp.array3d(dtype=wp.vec3), i: int, j: int, k: int, wy: wp.vec3, wz: wp.vec3):
    """sum w v, sum j w v and sum k w v over the 3x3 nodes (i, j..j+2, k..k+2), j and k counted from 0."""
    s0, t0 = _gather_line(grid_v, i, j, k, wz)
    s1, t1 = _gather_line(grid_v, i, j + 1, k, wz)
    s2, t2 = _gather_line(grid_v, i, j + 2, k, wz)
    u1 = wy[1] * s1
    u2 = wy[2] * s2
    return wy[0] * s0 + u1 + u2, u1 + 2.0 * u2, wy[0] * t0 + wy[1] * t1 + wy[2] * t2


@wp.kernel
def g2p_kernel(
    x: wp.array(dtype=wp.vec3),
    F: wp.array(dtype=wp.mat33),
    grid_v: wp.array3d(dtype=wp.vec3),
    dt: float,
    dx: float,
    res: int,
    clip_lo: float,
    clip_hi: float,
    x_out: wp.array(dtype=wp.vec3),
    v_out: wp.array(dtype=wp.vec3),
    C_out: wp.array(dtype=wp.mat33),
    F_out: wp.array(dtype=wp.mat33),
):
    p = wp.tid()
    inv_dx = 1.0 / dx
    b, fx = _cell(x[p], inv_dx, res)
    w = _weights(fx)
    bi = int(b[0]) + PAD
    bj = int(b[1]) + PAD
    bk = int(b[2]) + PAD
    # sum_n w_n v_n (x_n - x_p)^T = dx (sum_n w_n v_n (i, j, k)^T - vel fx^T), summed axis by axis; the
    # sums weighted by i, j or k (0, 1, 2) are written out so that no flop multiplies by 0 or 1.
    wy = wp.vec3(w[0, 1], w[1, 1], w[2, 1])
    wz = wp.vec3(w[0, 2], w[1, 2], w[2, 2])
    s0, sj0, sk0 = _gather_plane(grid_v, bi, bj, bk, wy, wz)
    s1, sj1, sk1 = _gather_plane(grid_v, bi + 1, bj, bk, wy, wz)
    s2, sj2, sk2 = _gather_plane(grid_v, bi + 2, bj, bk, wy, wz)
    u1 = w[1, 0] * s1
    u2 = w[2, 0] * s2
    vel = w[0, 0] * s0 + u1 + u2
    c0 = u1 + 2.0 * u2
    c1 = w[0, 0] * sj0 + w[1, 0] * sj1 + w[2, 0] * sj2
    c2 = w[0, 0] * sk0 + w[1, 0] * sk1 + w[2, 0] * sk2
    Bm = dx * (wp.matrix_from_cols(c0, c1, c2) - wp.outer(vel, fx))
    Cp = (4.0 * inv_dx * inv_dx) * Bm
    C_out[p] = Cp
    v_out[p] = vel
    F_out[p] = (wp.identity(n=3, dtype=float) + dt * Cp) * F[p]
    xn = x[p] + dt * vel
    x_out[p] = wp.vec3(
        wp.clamp(xn[0], clip_lo, clip_hi), wp.clamp(xn[1], clip_lo, clip_hi), wp.clamp(xn[2], clip_lo, clip_hi)
    )


@wp.kernel
def _add_kernel(dst: wp.array(dtype=Any), src: wp.array(dtype=Any)):
    """dst += src, element by element (flat grid copies of one dtype)."""
    t = wp.tid()
    dst[t] = dst[t] + src[t]


for _t in (wp.vec3, wp.vec4):  # declared instances (momentum+mass copies, velocity adjoints): compiled ahead of time
    wp.overload(_add_kernel, {"dst": wp.array(dtype=_t), "src": wp.array(dtype=_t)})


# -------------------------------------------------------------------------------------------- solver


def _ranges(n: int, threads: int, least: int) -> list[tuple[int, int]]:
    """[lo, hi) ranges splitting n items over at most `threads` threads, at least `least` items each."""
    return [(lo, lo + count) for lo, count in split_range(n, max(1, min(threads, n // least)))]


def _run(groups: list[list]) -> None:
    """Call each group's calls (recorded launches, zeroings) in order, the groups on parallel threads."""
    run_parallel([partial(_call_all, group) for group in groups])


def _call_all(calls: list) -> None:
    for call in calls:
        call()


def _adjoints(args):
    """Adjoint arguments of a launch: an array's Warp-owned grad, a zero value for vectors/scalars and
    structs (the boundary conditions are not differentiated)."""
    out = []
    for a in args:
        if isinstance(a, wp.array):
            out.append(a.grad if a.requires_grad else None)
        elif isinstance(a, GridConditions.cls):
            out.append(GridConditions())
        elif wp.types.is_value(a):
            out.append(type(a)())
        else:
            out.append(None)
    return out


class MPMSolver:
    """Preallocated Warp buffers for one particle set and one grid; `step()` advances `inp` into `out`.

    Buffers (Warp arrays, all on `device`): inputs x, v, C, F, tau; outputs x1, v1, C1, F1; per-particle mass
    and vol; grid_mv [(res+3)^3, vec4 = (m v, m)] and grid_v. Per-particle material ids live with the
    material (`materials.MaterialMix`), which computes tau, so the kernels need none. `mpm_bridge` fills the inputs from
    torch tensors; a pure-Warp caller may write them directly (e.g. via `wp.to_torch`) and call `swap()`.

    `threads` (CPU only; default: torch's CPU thread count) splits the particle kernels over that many cores
    for scenes of a few thousand particles or more (Warp runs a CPU kernel on one thread). Results then differ
    from one thread's in the last bits (the grid sums in another order) but repeat exactly for the same count.
    """

    def __init__(
        self, cfg: MPMConfig, mass: np.ndarray, vol: np.ndarray, device: str = "cpu", threads: int | None = None
    ):
        init_warp()
        self.cfg = cfg
        self.device = wp.get_device(device)
        n = len(mass)
        if n == 0 or len(vol) != n:
            raise ConfigError(f"MPM needs as many volumes as masses and at least one particle, got {n}/{len(vol)}")
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise ConfigError(f"MPM threads must be an integer >= 1 (or None: torch's thread count), got {threads!r}")
        self.num_particles = n
        d = self.device
        vec, mat = wp.vec3, wp.mat33
        self.x, self.v, self.x1, self.v1 = (wp.zeros(n, dtype=vec, device=d, requires_grad=True) for _ in range(4))
        self.C, self.F, self.tau, self.C1, self.F1 = (
            wp.zeros(n, dtype=mat, device=d, requires_grad=True) for _ in range(5)
        )
        self.mass = wp.array(np.asarray(mass, np.float32), dtype=float, device=d)
        self.vol = wp.array(np.asarray(vol, np.float32), dtype=float, device=d)
        shape = (cfg.res + 1 + 2 * PAD,) * 3
        self.grid_mv = wp.zeros(shape, dtype=wp.vec4, device=d, requires_grad=True)
        self.grid_v = wp.zeros(shape, dtype=wp.vec3, device=d, requires_grad=True)
        # On CPU the particle kernels run over contiguous particle ranges on several cores (`_run`). The two
        # scatters (P2G into grid_mv, adjoint G2P into grid_v.grad) get one grid per range after the first,
        # summed into the first; a CUDA launch is already parallel and uses a single range.
        wanted = 1 if self.device.is_cuda else (threads or torch.get_num_threads())
        least = PARTICLES_PER_THREAD + int(PARTICLES_PER_THREAD_PER_NODE * self.grid_mv.size)
        self.particle_ranges = _ranges(n, wanted, least)
        self.node_ranges = _ranges(self.grid_mv.size, len(self.particle_ranges), NODES_PER_THREAD)
        extra = len(self.particle_ranges) - 1
        self._mv_parts = [self.grid_mv] + [wp.zeros(shape, dtype=wp.vec4, device=d) for _ in range(extra)]
        self._adj_v_parts = [self.grid_v.grad] + [wp.zeros(shape, dtype=wp.vec3, device=d) for _ in range(extra)]
        self.conditions = self._conditions()
        self._recorded: dict = {}
        self._record()

    def _conditions(self) -> GridConditions:
        cfg, d = self.cfg, self.device
        bc = GridConditions()
        bc.gravity = wp.vec3(*cfg.gravity)
        bc.wall = WALL_KINDS[cfg.wall]
        bc.band = int(cfg.wall_band)
        unit = [np.asarray(p.normal, np.float32) / np.linalg.norm(p.normal) for p in cfg.planes]
        bc.plane_point = wp.array([p.point for p in cfg.planes], dtype=wp.vec3, device=d)
        bc.plane_normal = wp.array(unit, dtype=wp.vec3, device=d)
        bc.plane_kind = wp.array([WALL_KINDS[p.kind] for p in cfg.planes], dtype=int, device=d)
        bc.sphere_center = wp.array([s.center for s in cfg.spheres], dtype=wp.vec3, device=d)
        bc.sphere_radius = wp.array([s.radius for s in cfg.spheres], dtype=float, device=d)
        bc.sphere_kind = wp.array([WALL_KINDS[s.kind] for s in cfg.spheres], dtype=int, device=d)
        return bc

    def _args(self, lo: int = 0, hi: int | None = None, part: int = 0):
        """Launch arguments (inputs, outputs) of P2G, the grid update and G2P; P2G and G2P over the particles
        [lo, hi) only, P2G scattering into grid copy `part`."""
        cfg = self.cfg
        dt, dx, res = float(cfg.dt), float(cfg.dx), int(cfg.res)
        hi = self.num_particles if hi is None else hi

        def own(a):  # the particle range's view of a per-particle array
            return a if (lo, hi) == (0, self.num_particles) else a[lo:hi]

        p2g = ([own(self.x), own(self.v), own(self.C), own(self.tau), own(self.mass), own(self.vol), dt, dx, res],
               [self._mv_parts[part]])
        grid = (
            [self.grid_mv.flatten(), self.grid_mv.shape[0], dt, dx, res, self.conditions],
            [self.grid_v.flatten()],
        )
        lo_clip, hi_clip = cfg.clip * dx, 1.0 - cfg.clip * dx
        g2p = ([own(self.x), own(self.F), self.grid_v, dt, dx, res, lo_clip, hi_clip],
               [own(self.x1), own(self.v1), own(self.C1), own(self.F1)])
        return p2g, grid, g2p, own

    def _record(self) -> None:
        """Pre-built launches (forward and adjoint) for the current buffer assignment: replaying them skips
        Warp's argument packing on every step. Built once for each of the two assignments `swap()` toggles.

        Each stage is a list of groups, one per thread, each a list of calls run in order (`_run`); a range
        zeroes its own scatter target first, so that the zeroing runs in parallel too.
        """
        key = id(self.x)
        if key in self._recorded:
            self._launches, self._adjoint_launches = self._recorded[key]
            return
        from meshsim.physics.mpm_adjoint import g2p_adjoint_kernel, grid_adjoint_kernel, p2g_adjoint_kernel

        d, nodes = self.device, self.grid_mv.size

        def rec(kernel, dim, inputs, outputs):
            return wp.launch(kernel, dim, inputs=inputs, outputs=outputs, device=d, record_cmd=True).launch

        p2g, g2p, g2p_adj, p2g_adj = [], [], [], []
        for part, (lo, hi) in enumerate(self.particle_ranges):
            (a, oa), _, (c, oc), own = self._args(lo, hi, part)
            p2g.append([self._mv_parts[part].zero_, rec(p2g_kernel, hi - lo, a, oa)])
            g2p.append([rec(g2p_kernel, hi - lo, c, oc)])
            grads_out = [own(b.grad) for b in (self.x1, self.v1, self.C1, self.F1)]
            # The one adjoint accumulated with atomics (the others are written whole): zeroed first.
            g2p_adj.append([self._adj_v_parts[part].zero_,
                            rec(g2p_adjoint_kernel, hi - lo, [*c, own(self.v1), own(self.C1), *grads_out],
                                [own(self.x.grad), own(self.F.grad), self._adj_v_parts[part]])])
            p2g_adj.append([rec(p2g_adjoint_kernel, hi - lo, [*a, self.grid_mv.grad],
                                [own(b.grad) for b in (self.x, self.v, self.C, self.tau)])])
        _, (b, ob), _, _ = self._args()
        grid = [[rec(grid_kernel, nodes, b, ob)]]
        grid_adj = [[rec(grid_adjoint_kernel, nodes, [*b, ob[0].grad], [self.grid_mv.grad.flatten()])]]
        self._launches = {"p2g": p2g, "sum": self._summing(self._mv_parts), "grid": grid, "g2p": g2p}
        self._adjoint_launches = {  # in the order they run
            "g2p": g2p_adj, "sum": self._summing(self._adj_v_parts), "grid": grid_adj, "p2g": p2g_adj,
        }
        self._recorded[key] = self._launches, self._adjoint_launches

    def _summing(self, parts) -> list:
        """Launch groups that add grid copies 1.. into copy 0, each thread over its own range of nodes."""
        if len(parts) == 1:
            return [[]]
        flat = [p.flatten() for p in parts]
        return [
            [wp.launch(_add_kernel, hi - lo, inputs=[flat[0][lo:hi], f[lo:hi]], device=self.device,
                       record_cmd=True).launch for f in flat[1:]]
            for lo, hi in self.node_ranges
        ]

    def grid_pass(self) -> None:
        """P2G and grid update from the input buffers (also used to recompute the grid in backward)."""
        for stage in ("p2g", "sum", "grid"):
            _run(self._launches[stage])

    def step(self) -> None:
        """One explicit step: inputs (x, v, C, F, tau) -> outputs (x1, v1, C1, F1)."""
        self.grid_pass()
        _run(self._launches["g2p"])

    def swap(self) -> None:
        """Make the outputs the next inputs (pure-Warp stepping without copies)."""
        self.x, self.x1 = self.x1, self.x
        self.v, self.v1 = self.v1, self.v
        self.C, self.C1 = self.C1, self.C
        self.F, self.F1 = self.F1, self.F
        self._record()

    def backward(self, generated: bool = False) -> None:
        """Set the input adjoints (x.grad, v.grad, C.grad, F.grad, tau.grad) from the output adjoints
        (x1.grad, ...) of the step last run forward.

        Expects the inputs and the outputs v1, C1 to hold that step's values; recomputes the grid, then runs
        the adjoints G2P -> grid -> P2G directly (no tape), so only Warp-owned grad buffers are written. The
        adjoints are hand-written (`mpm_adjoint`); `generated=True` uses Warp's generated ones (for tests).
        """
        if generated:
            self._generated_backward()
            return
        self.grid_pass()
        for stage in self._adjoint_launches.values():
            _run(stage)

    def _generated_backward(self) -> None:
        for arr in (self.x, self.v, self.C, self.F, self.tau, self.grid_mv, self.grid_v):
            arr.grad.zero_()
        self.grid_pass()
        d, n = self.device, self.num_particles
        for kernel, dim, (inputs, outputs) in reversed(
            list(zip((p2g_kernel, grid_kernel, g2p_kernel), (n, self.grid_mv.size, n), self._args()[:3]))
        ):
            wp.launch(kernel, dim, inputs=inputs, outputs=outputs, adj_inputs=_adjoints(inputs),
                      adj_outputs=_adjoints(outputs), adjoint=True, device=d, record_tape=False)

    def grid_mass_momentum(self) -> np.ndarray:
        """[(res+3)^3, 4] node (m v, m) of the last grid pass (for tests and diagnostics)."""
        return self.grid_mv.numpy().reshape(-1, 4)

    def node_positions(self) -> np.ndarray:
        """[(res+3)^3, 3] positions of the grid nodes, padding included, in the order of `grid_mass_momentum`."""
        idx = np.arange(self.cfg.res + 1 + 2 * PAD) - PAD
        g = np.stack(np.meshgrid(idx, idx, idx, indexing="ij"), -1).reshape(-1, 3)
        return g * self.cfg.dx
