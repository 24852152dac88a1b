"""Hand-written adjoints of the MPM transfer kernels (P2G and G2P).

Warp's generated adjoints replay each 27-node loop with matrix temporaries and scatter through atomics;
these kernels do the same reverse pass in one sweep per particle with the closed-form derivatives of the
quadratic B-spline (dw0 = f - 1.5, dw1 = -2 (f - 1), dw2 = f - 0.5). Particle grads are accumulated (+=), the
grid adjoint of G2P is scattered with atomics. `tests/nclaw` checks them against Warp's generated adjoints.
"""

from __future__ import annotations

import warp as wp

from meshsim.physics.mpm import PAD, _cell, _weights

wp.set_module_options({"enable_backward": False})  # these kernels are adjoints already


@wp.func
def _dweights(fx: wp.vec3):
    """d(weight)/d(fx) of the three nodes along each axis: rows = node 0, 1, 2."""
    return wp.matrix_from_rows(fx - wp.vec3(1.5), -2.0 * (fx - wp.vec3(1.0)), fx - wp.vec3(0.5))


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
    p = wp.tid()
    inv_dx = 1.0 / dx
    b, fx = _cell(x[p], inv_dx, res)
    w = _weights(fx)
    dw = _dweights(fx)
    m = mass[p]
    k_stress = -dt * vol[p] * 4.0 * inv_dx * inv_dx
    A = k_stress * tau[p] + m * C[p]
    At = wp.transpose(A)
    mv = m * v[p]
    bi = int(b[0]) + PAD
    bj = int(b[1]) + PAD
    bk = int(b[2]) + PAD
    g_mv = wp.vec3(0.0)
    g_A = wp.mat33(0.0)
    g_fx = wp.vec3(0.0)
    for i in range(3):
        for j in range(3):
            for k in range(3):
                d = (wp.vec3(float(i), float(j), float(k)) - fx) * dx
                weight = w[i, 0] * w[j, 1] * w[k, 2]
                g4 = adj_grid_mv[bi + i, bj + j, bk + k]
                G = wp.vec3(g4[0], g4[1], g4[2])
                g_mv += weight * G
                g_A += weight * wp.outer(G, d)
                g_w = wp.dot(G, mv + A * d) + g4[3] * m
                dW = wp.vec3(dw[i, 0] * w[j, 1] * w[k, 2], w[i, 0] * dw[j, 1] * w[k, 2], w[i, 0] * w[j, 1] * dw[k, 2])
                g_fx += g_w * dW
    g_fx -= dx * (At * g_mv)  # the d-path, summed: sum_n w_n A^T G_n dx
    adj_x[p] = adj_x[p] + g_fx * inv_dx
    adj_v[p] = adj_v[p] + m * g_mv
    adj_C[p] = adj_C[p] + m * g_A
    adj_tau[p] = adj_tau[p] + k_stress * g_A


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
    scale = 4.0 * inv_dx * inv_dx
    xn = x[p] + dt * vel
    ax = adj_x_out[p]
    # clamp(): the gradient passes only where the new position was inside the clip box.
    for a in range(3):
        if xn[a] < clip_lo or xn[a] > clip_hi:
            ax[a] = 0.0
    aF = adj_F_out[p]
    Fp = F[p]
    g_vel = adj_v_out[p] + dt * ax
    g_B = scale * (adj_C_out[p] + dt * aF * wp.transpose(Fp))
    g_Bt = wp.transpose(g_B)
    adj_F[p] = adj_F[p] + wp.transpose(wp.identity(n=3, dtype=float) + dt * Cp) * aF
    g_fx = wp.vec3(0.0)
    for i in range(3):
        for j in range(3):
            for k in range(3):
                d = (wp.vec3(float(i), float(j), float(k)) - fx) * dx
                weight = w[i, 0] * w[j, 1] * w[k, 2]
                node_v = grid_v[bi + i, bj + j, bk + k]
                wp.atomic_add(adj_grid_v, bi + i, bj + j, bk + k, weight * (g_vel + g_B * d))
                g_w = wp.dot(g_vel, node_v) + wp.dot(node_v, g_B * d)
                dW = wp.vec3(dw[i, 0] * w[j, 1] * w[k, 2], w[i, 0] * dw[j, 1] * w[k, 2], w[i, 0] * w[j, 1] * dw[k, 2])
                g_fx += g_w * dW
    g_fx -= dx * (g_Bt * vel)  # the d-path, summed: sum_n w_n g_B^T v_n dx
    adj_x[p] = adj_x[p] + ax + g_fx * inv_dx
