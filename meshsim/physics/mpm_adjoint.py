"""Hand-written adjoints of the MPM kernels (P2G, grid update, G2P).

Warp's generated adjoints replay each 27-node loop with matrix temporaries and scatter through atomics, and
the generated grid adjoint replays every node, empty ones included. These kernels do each reverse pass in one
sweep. The transfer adjoints use the structure the forward kernels use: along the three nodes of an axis the
offset x_n - x_p grows by dx, so every per-node quantity is a running sum, and the weight gradient
(closed-form quadratic B-spline derivative: dw0 = f - 1.5, dw1 = -2 (f - 1), dw2 = f - 0.5) is summed one
axis at a time. The grid adjoint replays a node's boundary conditions (`mpm._node_velocity`) and applies the
transposed projections in reverse order. Input grads are written (=), not accumulated, so the caller zeroes
only the grid velocity grad that G2P's adjoint scatters into. `tests/nclaw` checks them against Warp's
generated adjoints.
"""

from __future__ import annotations

import warp as wp

from meshsim.physics.mpm import PAD, _cell, _condition_normal, _node, _node_velocity, _weights

wp.set_module_options({"enable_backward": False})  # these kernels are adjoints already


@wp.func
def _dweights(fx: wp.vec3):
    """d(weight)/d(fx) of the three nodes along each axis: rows = node 0, 1, 2."""
    return wp.matrix_from_rows(fx - wp.vec3(1.5), -2.0 * (fx - wp.vec3(1.0)), fx - wp.vec3(0.5))


@wp.func
def _col(A: wp.mat33, c: int):
    return wp.vec3(A[0, c], A[1, c], A[2, c])


@wp.kernel
def p2g_adjoint_kernel(
    x: wp.array(dtype=wp.vec3),
    v: wp.array(dtype=wp.vec3),
    C: wp.array(dtype=wp.mat33),
    tau: wp.array(dtype=wp.mat33),
    mass: wp.array(dtype=float),
    vol: wp.array(dtype=float),
    dt: float,
    dx: float,
    res: int,
    adj_grid_mv: wp.array3d(dtype=wp.vec4),
    adj_x: wp.array(dtype=wp.vec3),
    adj_v: wp.array(dtype=wp.vec3),
    adj_C: wp.array(dtype=wp.mat33),
    adj_tau: wp.array(dtype=wp.mat33),
):
    # Forward: node n = (i, j, k) gets w_n p_n and w_n m with p_n = m v + A dx (n - fx) = u + dx A n.
    # With (G_n, h_n) its adjoint: g(m v) = sum w_n G_n, g(A) = dx sum w_n G_n (n - fx)^T and
    # g(fx) = sum (G_n . p_n + m h_n) grad w_n - dx A^T g(m v).
    p = wp.tid()
    inv_dx = 1.0 / dx
    b, fx = _cell(x[p], inv_dx, res)
    w = _weights(fx)
    dw = _dweights(fx)
    m = mass[p]
    k_stress = -dt * vol[p] * 4.0 * inv_dx * inv_dx
    A = k_stress * tau[p] + m * C[p]
    a0 = dx * _col(A, 0)
    a1 = dx * _col(A, 1)
    a2 = dx * _col(A, 2)
    u = m * v[p] - A * (fx * dx)
    bi = int(b[0]) + PAD
    bj = int(b[1]) + PAD
    bk = int(b[2]) + PAD
    g_mv = wp.vec3(0.0)  # sum w_n G_n
    s0 = wp.vec3(0.0)  # sum w_n n_c G_n, c = 0, 1, 2
    s1 = wp.vec3(0.0)
    s2 = wp.vec3(0.0)
    g_w = wp.vec3(0.0)  # sum (G_n . p_n + m h_n) grad w_n
    for i in range(3):
        ui = u + float(i) * a0
        ti = wp.vec3(0.0)
        tij = wp.vec3(0.0)
        tik = wp.vec3(0.0)
        e_ww = float(0.0)
        e_dw = float(0.0)
        e_wd = float(0.0)
        for j in range(3):
            uij = ui + float(j) * a1
            tj = wp.vec3(0.0)
            tjk = wp.vec3(0.0)
            r_w = float(0.0)
            r_d = float(0.0)
            for k in range(3):
                h = adj_grid_mv[bi + i, bj + j, bk + k]
                G = wp.vec3(h[0], h[1], h[2])
                s = wp.dot(G, uij + float(k) * a2) + m * h[3]
                wG = w[k, 2] * G
                tj += wG
                tjk += float(k) * wG
                r_w += w[k, 2] * s
                r_d += dw[k, 2] * s
            ti += w[j, 1] * tj
            tij += (float(j) * w[j, 1]) * tj
            tik += w[j, 1] * tjk
            e_ww += w[j, 1] * r_w
            e_dw += dw[j, 1] * r_w
            e_wd += w[j, 1] * r_d
        g_mv += w[i, 0] * ti
        s0 += (float(i) * w[i, 0]) * ti
        s1 += w[i, 0] * tij
        s2 += w[i, 0] * tik
        g_w += wp.vec3(dw[i, 0] * e_ww, w[i, 0] * e_dw, w[i, 0] * e_wd)
    g_A = dx * (wp.matrix_from_cols(s0, s1, s2) - wp.outer(g_mv, fx))
    g_fx = g_w - dx * (wp.transpose(A) * g_mv)
    adj_x[p] = adj_x[p] + g_fx * inv_dx  # G2P's adjoint wrote its part of adj_x first
    adj_v[p] = m * g_mv
    adj_C[p] = m * g_A
    adj_tau[p] = k_stress * g_A


@wp.kernel
def grid_adjoint_kernel(
    grid_mv: wp.array(dtype=wp.vec4),
    side: int,
    dt: float,
    dx: float,
    res: int,
    gravity: wp.vec3,
    wall: int,
    band: int,
    plane_point: wp.array(dtype=wp.vec3),
    plane_normal: wp.array(dtype=wp.vec3),
    plane_kind: wp.array(dtype=int),
    sphere_center: wp.array(dtype=wp.vec3),
    sphere_radius: wp.array(dtype=float),
    sphere_kind: wp.array(dtype=int),
    adj_grid_v: wp.array(dtype=wp.vec3),
    adj_grid_mv: wp.array(dtype=wp.vec4),
):
    t = wp.tid()
    q = grid_mv[t]
    out = wp.vec4(0.0)
    if q[3] > 0.0:
        node = _node(t, side)
        vel, mask, stopped = _node_velocity(q, node, dt, dx, res, gravity, wall, band, plane_point,
                                            plane_normal, plane_kind, sphere_center, sphere_radius, sphere_kind)
        if stopped == 0:  # a stopped node's velocity is 0 whatever its momentum
            g = adj_grid_v[t]
            count = 6 + plane_point.shape[0] + sphere_center.shape[0]
            for r in range(count):
                s = count - 1 - r  # the projections are symmetric; applied last-first
                if (mask >> wp.int64(s)) & wp.int64(1) != wp.int64(0):
                    n = _condition_normal(s, node, dx, plane_normal, sphere_center)
                    g = g - wp.dot(g, n) * n
            inv_m = 1.0 / q[3]
            mv = wp.vec3(q[0], q[1], q[2])
            out = wp.vec4(g[0] * inv_m, g[1] * inv_m, g[2] * inv_m, -wp.dot(g, mv) * inv_m * inv_m)
    adj_grid_mv[t] = out


@wp.kernel
def g2p_adjoint_kernel(
    x: wp.array(dtype=wp.vec3),
    F: wp.array(dtype=wp.mat33),
    grid_v: wp.array3d(dtype=wp.vec3),
    dt: float,
    dx: float,
    res: int,
    clip_lo: float,
    clip_hi: float,
    v_out: wp.array(dtype=wp.vec3),
    C_out: wp.array(dtype=wp.mat33),
    adj_x_out: wp.array(dtype=wp.vec3),
    adj_v_out: wp.array(dtype=wp.vec3),
    adj_C_out: wp.array(dtype=wp.mat33),
    adj_F_out: wp.array(dtype=wp.mat33),
    adj_x: wp.array(dtype=wp.vec3),
    adj_F: wp.array(dtype=wp.mat33),
    adj_grid_v: wp.array3d(dtype=wp.vec3),
):
    # Forward: vel = sum w_n v_n, B = dx sum w_n v_n (n - fx)^T. With r_n = g_vel + g_B dx (n - fx):
    # g(v_n) = w_n r_n and g(fx) = sum (v_n . r_n) grad w_n - dx g_B^T vel.
    p = wp.tid()
    inv_dx = 1.0 / dx
    b, fx = _cell(x[p], inv_dx, res)
    w = _weights(fx)
    dw = _dweights(fx)
    bi = int(b[0]) + PAD
    bj = int(b[1]) + PAD
    bk = int(b[2]) + PAD
    vel = v_out[p]  # the forward outputs of this step: gathered velocity and affine matrix
    Cp = C_out[p]
    xn = x[p] + dt * vel
    ax = adj_x_out[p]
    # clamp(): the gradient passes only where the new position was inside the clip box.
    for a in range(3):
        if xn[a] < clip_lo or xn[a] > clip_hi:
            ax[a] = 0.0
    aF = adj_F_out[p]
    g_vel = adj_v_out[p] + dt * ax
    g_B = (4.0 * inv_dx * inv_dx) * (adj_C_out[p] + dt * aF * wp.transpose(F[p]))
    adj_F[p] = wp.transpose(wp.identity(n=3, dtype=float) + dt * Cp) * aF
    b0 = dx * _col(g_B, 0)
    b1 = dx * _col(g_B, 1)
    b2 = dx * _col(g_B, 2)
    r0 = g_vel - g_B * (fx * dx)
    g_w = wp.vec3(0.0)  # sum (v_n . r_n) grad w_n
    for i in range(3):
        ri = r0 + float(i) * b0
        e_ww = float(0.0)
        e_dw = float(0.0)
        e_wd = float(0.0)
        for j in range(3):
            rij = ri + float(j) * b1
            wij = w[i, 0] * w[j, 1]
            r_w = float(0.0)
            r_d = float(0.0)
            for k in range(3):
                r = rij + float(k) * b2
                wp.atomic_add(adj_grid_v, bi + i, bj + j, bk + k, (wij * w[k, 2]) * r)
                s = wp.dot(grid_v[bi + i, bj + j, bk + k], r)
                r_w += w[k, 2] * s
                r_d += dw[k, 2] * s
            e_ww += w[j, 1] * r_w
            e_dw += dw[j, 1] * r_w
            e_wd += w[j, 1] * r_d
        g_w += wp.vec3(dw[i, 0] * e_ww, w[i, 0] * e_dw, w[i, 0] * e_wd)
    g_fx = g_w - dx * (wp.transpose(g_B) * vel)
    adj_x[p] = ax + g_fx * inv_dx
