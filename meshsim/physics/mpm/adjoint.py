"""Hand-written adjoints of the MPM kernels (P2G, grid update, G2P).

Warp's generated adjoints replay each 27-node loop with matrix temporaries and scatter through atomics, and
its generated grid adjoint is wrong at collider nodes (the velocity is reassigned inside dynamic loops over
the colliders). These kernels do each reverse pass in one sweep. The transfer adjoints use the structure the
forward kernels use: along the three nodes of an axis the offset x_n - x_p grows by dx, so every per-node
quantity is a running sum, and the weight gradient (closed-form quadratic B-spline derivative:
dw0 = f - 1.5, dw1 = -2 (f - 1), dw2 = f - 0.5) is summed one axis at a time. The grid adjoint replays a
node's boundary conditions (`grid.node_velocity`) and applies the transposed projections in reverse order.
Input grads are written (=), not accumulated, so the caller zeroes only the grid velocity grad that G2P's
adjoint scatters into. `tests/physics/mpm` checks the transfer adjoints against Warp's generated ones and the grid
adjoint against finite differences.
"""

from __future__ import annotations

import warp as wp

from .grid import Grid, condition_count, condition_normal, node_coords, node_velocity, particle_cell
from .stencil import column, dweights, weights
from .transfer import Particles, particle_momentum

wp.set_module_options({"enable_backward": False})  # these kernels are adjoints already


@wp.func
def _axes(fx: wp.vec3):
    """The three nodes' weights along each axis, then their derivatives: wx, wy, wz, dwx, dwy, dwz."""
    w = weights(fx)
    dw = dweights(fx)
    return column(w, 0), column(w, 1), column(w, 2), column(dw, 0), column(dw, 1), column(dw, 2)


@wp.func
def _weight_grad(wx: wp.vec3, dwx: wp.vec3, ww: wp.vec3, dw: wp.vec3, wd: wp.vec3):
    """sum_n s_n grad w_n from the plane sums of s weighted w w, dw w and w dw (`*_adj_plane`), plane by plane."""
    return wp.vec3(wp.dot(dwx, ww), wp.dot(wx, dw), wp.dot(wx, wd))


@wp.func
def _p2g_adj_line(adj: wp.array3d(dtype=wp.vec4), i: int, j: int, k: int, u: wp.vec3, a2: wp.vec3, m: float,
                  wz: wp.vec3, dwz: wp.vec3):
    """Nodes (i, j, k..k+2) with p = u, u + a2, u + 2 a2 and s = G . p + m h: sum w G, sum k w G, sum w s,
    sum dw s."""
    h0 = adj[i, j, k]
    h1 = adj[i, j, k + 1]
    h2 = adj[i, j, k + 2]
    G0 = wp.vec3(h0[0], h0[1], h0[2])
    G1 = wp.vec3(h1[0], h1[1], h1[2])
    G2 = wp.vec3(h2[0], h2[1], h2[2])
    u1 = u + a2
    s = wp.vec3(wp.dot(G0, u) + m * h0[3], wp.dot(G1, u1) + m * h1[3], wp.dot(G2, u1 + a2) + m * h2[3])
    g1 = wz[1] * G1
    g2 = wz[2] * G2
    return wz[0] * G0 + g1 + g2, g1 + 2.0 * g2, wp.dot(wz, s), wp.dot(dwz, s)


@wp.func
def _p2g_adj_plane(adj: wp.array3d(dtype=wp.vec4), i: int, j: int, k: int, u: wp.vec3, a1: wp.vec3, a2: wp.vec3,
                   m: float, wy: wp.vec3, wz: wp.vec3, dwy: wp.vec3, dwz: wp.vec3):
    """Nodes (i, j..j+2, k..k+2): sum w G, sum j w G, sum k w G and sum s (w w, dw w, w dw) over (j, k)."""
    t0, tk0, rw0, rd0 = _p2g_adj_line(adj, i, j, k, u, a2, m, wz, dwz)
    u = u + a1
    t1, tk1, rw1, rd1 = _p2g_adj_line(adj, i, j + 1, k, u, a2, m, wz, dwz)
    u = u + a1
    t2, tk2, rw2, rd2 = _p2g_adj_line(adj, i, j + 2, k, u, a2, m, wz, dwz)
    v1 = wy[1] * t1
    v2 = wy[2] * t2
    rw = wp.vec3(rw0, rw1, rw2)
    return (wy[0] * t0 + v1 + v2, v1 + 2.0 * v2, wy[0] * tk0 + wy[1] * tk1 + wy[2] * tk2, wp.dot(wy, rw),
            wp.dot(dwy, rw), wp.dot(wy, wp.vec3(rd0, rd1, rd2)))


@wp.kernel
def p2g_adjoint_kernel(particles: Particles, grid: Grid, adj_grid_mv: wp.array3d(dtype=wp.vec4), adj: Particles):
    # Forward: node n = (i, j, k) gets w_n p_n and w_n m with p_n = m v + A dx (n - fx) = u + dx A n.
    # With (G_n, h_n) its adjoint: g(m v) = sum w_n G_n, g(A) = dx sum w_n G_n (n - fx)^T and
    # g(fx) = sum (G_n . p_n + m h_n) grad w_n - dx A^T g(m v).
    p = wp.tid()
    dx = grid.dx
    bi, bj, bk, fx, m, k_stress, A, u, a0, a1, a2 = particle_momentum(p, particles, grid)
    wx, wy, wz, dwx, dwy, dwz = _axes(fx)
    # Per plane i: sum w G, sum j w G, sum k w G and the three weight-gradient partial sums of s_n.
    t0, tj0, tk0, ww0, dw0, wd0 = _p2g_adj_plane(adj_grid_mv, bi, bj, bk, u, a1, a2, m, wy, wz, dwy, dwz)
    u = u + a0
    t1, tj1, tk1, ww1, dw1, wd1 = _p2g_adj_plane(adj_grid_mv, bi + 1, bj, bk, u, a1, a2, m, wy, wz, dwy, dwz)
    u = u + a0
    t2, tj2, tk2, ww2, dw2, wd2 = _p2g_adj_plane(adj_grid_mv, bi + 2, bj, bk, u, a1, a2, m, wy, wz, dwy, dwz)
    v1 = wx[1] * t1
    v2 = wx[2] * t2
    g_mv = wx[0] * t0 + v1 + v2  # sum w_n G_n
    s0 = v1 + 2.0 * v2  # sum w_n n_c G_n, c = 0, 1, 2
    s1 = wx[0] * tj0 + wx[1] * tj1 + wx[2] * tj2
    s2 = wx[0] * tk0 + wx[1] * tk1 + wx[2] * tk2
    # sum (G_n . p_n + m h_n) grad w_n
    g_w = _weight_grad(wx, dwx, wp.vec3(ww0, ww1, ww2), wp.vec3(dw0, dw1, dw2), wp.vec3(wd0, wd1, wd2))
    g_A = dx * (wp.matrix_from_cols(s0, s1, s2) - wp.outer(g_mv, fx))
    g_fx = g_w - dx * (wp.transpose(A) * g_mv)
    adj.x[p] = adj.x[p] + g_fx / dx  # G2P's adjoint wrote its part of adj.x first
    adj.v[p] = m * g_mv
    adj.C[p] = m * g_A
    adj.tau[p] = k_stress * g_A


@wp.kernel
def grid_adjoint_kernel(
    grid_mv: wp.array(dtype=wp.vec4),
    grid: Grid,
    adj_grid_v: wp.array(dtype=wp.vec3),
    adj_grid_mv: wp.array(dtype=wp.vec4),
):
    t = wp.tid()
    q = grid_mv[t]
    if not (q[3] > 0.0):  # an empty node (most of them; or a NaN mass, as in the forward) has velocity 0
        adj_grid_mv[t] = wp.vec4(0.0)
        return
    node = node_coords(t, grid.res)
    vel, mask, stopped = node_velocity(q, node, grid)
    out = wp.vec4(0.0)
    if stopped == 0:  # a stopped node's velocity is 0 whatever its momentum
        g = adj_grid_v[t]
        if mask != wp.int64(0):  # most nodes: no condition projected them
            count = condition_count(grid)
            for r in range(count):
                s = count - 1 - r  # the projections are symmetric; applied last-first
                if (mask >> wp.int64(s)) & wp.int64(1) != wp.int64(0):
                    n = condition_normal(s, node, grid)
                    g = g - wp.dot(g, n) * n
        inv_m = 1.0 / q[3]
        mv = wp.vec3(q[0], q[1], q[2])
        out = wp.vec4(g[0] * inv_m, g[1] * inv_m, g[2] * inv_m, -wp.dot(g, mv) * inv_m * inv_m)
    adj_grid_mv[t] = out


@wp.func
def _g2p_adj_line(grid_v: wp.array3d(dtype=wp.vec3), adj: wp.array3d(dtype=wp.vec3), i: int, j: int, k: int,
                  r: wp.vec3, b2: wp.vec3, wij: float, wz: wp.vec3, dwz: wp.vec3):
    """Nodes (i, j, k..k+2) with r = r, r + b2, r + 2 b2: scatter w r, return sum w (v . r) and sum dw (v . r)."""
    r1 = r + b2
    r2 = r1 + b2
    wp.atomic_add(adj, i, j, k, (wij * wz[0]) * r)
    wp.atomic_add(adj, i, j, k + 1, (wij * wz[1]) * r1)
    wp.atomic_add(adj, i, j, k + 2, (wij * wz[2]) * r2)
    s = wp.vec3(wp.dot(grid_v[i, j, k], r), wp.dot(grid_v[i, j, k + 1], r1), wp.dot(grid_v[i, j, k + 2], r2))
    return wp.dot(wz, s), wp.dot(dwz, s)


@wp.func
def _g2p_adj_plane(grid_v: wp.array3d(dtype=wp.vec3), adj: wp.array3d(dtype=wp.vec3), i: int, j: int, k: int,
                   r: wp.vec3, b1: wp.vec3, b2: wp.vec3, wi: float, wy: wp.vec3, wz: wp.vec3, dwy: wp.vec3,
                   dwz: wp.vec3):
    """Nodes (i, j..j+2, k..k+2): sum (v . r) over (j, k) weighted w w, dw w and w dw."""
    rw0, rd0 = _g2p_adj_line(grid_v, adj, i, j, k, r, b2, wi * wy[0], wz, dwz)
    r = r + b1
    rw1, rd1 = _g2p_adj_line(grid_v, adj, i, j + 1, k, r, b2, wi * wy[1], wz, dwz)
    r = r + b1
    rw2, rd2 = _g2p_adj_line(grid_v, adj, i, j + 2, k, r, b2, wi * wy[2], wz, dwz)
    rw = wp.vec3(rw0, rw1, rw2)
    return wp.dot(wy, rw), wp.dot(dwy, rw), wp.dot(wy, wp.vec3(rd0, rd1, rd2))


@wp.kernel
def g2p_adjoint_kernel(
    particles: Particles,
    grid_v: wp.array3d(dtype=wp.vec3),
    grid: Grid,
    out: Particles,
    adj_out: Particles,
    adj: Particles,
    adj_grid_v: wp.array3d(dtype=wp.vec3),
):
    # Forward: vel = sum w_n v_n, B = dx sum w_n v_n (n - fx)^T. With r_n = g_vel + g_B dx (n - fx):
    # g(v_n) = w_n r_n and g(fx) = sum (v_n . r_n) grad w_n - dx g_B^T vel.
    p = wp.tid()
    bi, bj, bk, fx = particle_cell(particles.x[p], grid)
    wx, wy, wz, dwx, dwy, dwz = _axes(fx)
    dt, dx = grid.dt, grid.dx
    inv_dx = 1.0 / dx
    vel = out.v[p]  # the forward outputs of this step: gathered velocity and affine matrix
    Cp = out.C[p]
    xn = particles.x[p] + dt * vel
    ax = adj_out.x[p]
    # clamp(): the gradient passes only where the new position was inside the clip box.
    for a in range(3):
        if xn[a] < grid.clip_lo or xn[a] > grid.clip_hi:
            ax[a] = 0.0
    aF = adj_out.F[p]
    g_vel = adj_out.v[p] + dt * ax
    g_B = (4.0 * inv_dx * inv_dx) * (adj_out.C[p] + dt * aF * wp.transpose(particles.F[p]))
    adj.F[p] = wp.transpose(wp.identity(n=3, dtype=float) + dt * Cp) * aF
    b0 = dx * column(g_B, 0)
    b1 = dx * column(g_B, 1)
    b2 = dx * column(g_B, 2)
    r0 = g_vel - g_B * (fx * dx)
    ww0, dw0, wd0 = _g2p_adj_plane(grid_v, adj_grid_v, bi, bj, bk, r0, b1, b2, wx[0], wy, wz, dwy, dwz)
    r0 = r0 + b0
    ww1, dw1, wd1 = _g2p_adj_plane(grid_v, adj_grid_v, bi + 1, bj, bk, r0, b1, b2, wx[1], wy, wz, dwy, dwz)
    r0 = r0 + b0
    ww2, dw2, wd2 = _g2p_adj_plane(grid_v, adj_grid_v, bi + 2, bj, bk, r0, b1, b2, wx[2], wy, wz, dwy, dwz)
    # sum (v_n . r_n) grad w_n
    g_w = _weight_grad(wx, dwx, wp.vec3(ww0, ww1, ww2), wp.vec3(dw0, dw1, dw2), wp.vec3(wd0, wd1, wd2))
    g_fx = g_w - dx * (wp.transpose(g_B) * vel)
    adj.x[p] = ax + g_fx * inv_dx
