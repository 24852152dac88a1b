"""The particle <-> grid transfers of MLS-MPM with APIC (quadratic B-splines, `stencil`):

    P2G    grid (m v, m) += w (m_p v_p + (-dt V_p 4/dx^2 tau_p + m_p C_p) (x_i - x_p)),  grid m += w m_p
    G2P    v_p = sum w v_i,  C_p = 4/dx^2 sum w v_i (x_i - x_p)^T,  F_p <- (I + dt C_p) F_p,  x_p += dt v_p

Their hand-written adjoints are in `adjoint`; Warp's generated ones stay available (tests compare the two).
"""

from __future__ import annotations

import warp as wp

from .grid import Grid, particle_cell
from .stencil import column, weights


@wp.struct
class Particles:
    """The per-particle arrays of one particle set: state (x, v, C, F), Kirchhoff stress tau, mass and volume. A
    step reads the input set and writes the state of the output set (its tau, mass and vol unset); an adjoint set
    holds the grads of the arrays that have them."""

    x: wp.array(dtype=wp.vec3)
    v: wp.array(dtype=wp.vec3)
    C: wp.array(dtype=wp.mat33)
    F: wp.array(dtype=wp.mat33)
    tau: wp.array(dtype=wp.mat33)
    mass: wp.array(dtype=float)
    vol: wp.array(dtype=float)


PARTICLE_FIELDS = tuple(Particles.vars)  # x, v, C, F, tau, mass, vol
STATE_FIELDS = ("x", "v", "C", "F")  # what a step writes


def make_particles(**arrays) -> Particles:
    """A `Particles` holding these Warp arrays by field name (x, v, C, F, tau, mass, vol); the rest stay unset."""
    s = Particles()
    for name, a in arrays.items():
        setattr(s, name, a)
    return s


@wp.func
def particle_momentum(p: int, particles: Particles, grid: Grid):
    """What particle p scatters (P2G) and its adjoint needs: base node (bi, bj, bk), fractional position fx, mass
    m, the stress factor k = -dt V 4/dx^2, the affine matrix A = k tau + m C, the momentum carried to the base
    node u = m v - A fx dx, and dx times A's columns (a0, a1, a2): a node's momentum p_n = u + i a0 + j a1 + k a2
    is built up one axis at a time by adding a column (the same sum, a few adds in the innermost loop)."""
    bi, bj, bk, fx = particle_cell(particles.x[p], grid)
    m = particles.mass[p]
    k_stress = -grid.dt * particles.vol[p] * 4.0 / (grid.dx * grid.dx)
    A = k_stress * particles.tau[p] + m * particles.C[p]
    u = m * particles.v[p] - A * (fx * grid.dx)
    a0 = grid.dx * column(A, 0)
    a1 = grid.dx * column(A, 1)
    a2 = grid.dx * column(A, 2)
    return bi, bj, bk, fx, m, k_stress, A, u, a0, a1, a2


@wp.kernel
def p2g_kernel(particles: Particles, grid: Grid, grid_mv: wp.array3d(dtype=wp.vec4)):
    p = wp.tid()
    bi, bj, bk, fx, m, k_stress, A, qi, a0, a1, a2 = particle_momentum(p, particles, grid)
    w = weights(fx)
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
def g2p_kernel(particles: Particles, grid_v: wp.array3d(dtype=wp.vec3), grid: Grid, out: Particles):
    p = wp.tid()
    x = particles.x[p]
    bi, bj, bk, fx = particle_cell(x, grid)
    w = weights(fx)
    # sum_n w_n v_n (x_n - x_p)^T = dx (sum_n w_n v_n (i, j, k)^T - vel fx^T), summed axis by axis; the
    # sums weighted by i, j or k (0, 1, 2) are written out so that no flop multiplies by 0 or 1.
    wy = column(w, 1)
    wz = column(w, 2)
    s0, sj0, sk0 = _gather_plane(grid_v, bi, bj, bk, wy, wz)
    s1, sj1, sk1 = _gather_plane(grid_v, bi + 1, bj, bk, wy, wz)
    s2, sj2, sk2 = _gather_plane(grid_v, bi + 2, bj, bk, wy, wz)
    u1 = w[1, 0] * s1
    u2 = w[2, 0] * s2
    vel = w[0, 0] * s0 + u1 + u2
    c0 = u1 + 2.0 * u2
    c1 = w[0, 0] * sj0 + w[1, 0] * sj1 + w[2, 0] * sj2
    c2 = w[0, 0] * sk0 + w[1, 0] * sk1 + w[2, 0] * sk2
    dt, dx = grid.dt, grid.dx
    Bm = dx * (wp.matrix_from_cols(c0, c1, c2) - wp.outer(vel, fx))
    inv_dx = 1.0 / dx
    Cp = (4.0 * inv_dx * inv_dx) * Bm
    out.C[p] = Cp
    out.v[p] = vel
    out.F[p] = (wp.identity(n=3, dtype=float) + dt * Cp) * particles.F[p]
    xn = x + dt * vel
    lo, hi = grid.clip_lo, grid.clip_hi
    out.x[p] = wp.vec3(wp.clamp(xn[0], lo, hi), wp.clamp(xn[1], lo, hi), wp.clamp(xn[2], lo, hi))
