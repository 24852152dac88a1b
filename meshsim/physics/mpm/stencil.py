"""The quadratic B-spline stencil of a particle: its base grid node, its 3x3x3 weights and their derivatives.

Base indices use floor() of a clamped position and the grid is padded by `PAD` nodes on each side, so every
index a kernel touches is inside its array, even for particles on the domain edge or with non-finite
positions. Shared by the transfer kernels (`transfer`) and their adjoints (`adjoint`).
"""

from __future__ import annotations

import warp as wp

PAD = 1  # padding nodes on each side of the grid: floor(x/dx - 0.5) >= -1 for x >= 0


@wp.func
def cell(xp: wp.vec3, inv_dx: float, res: int):
    """Array indices (padding included) of the base node (floor, clamped to [-1, res-1]) and the fractional
    offset in [0.5, 1.5] (for clamped x) of xp from it."""
    hi = float(res) - 1.0
    g = xp * inv_dx - wp.vec3(0.5)
    b = wp.vec3(
        wp.floor(wp.clamp(g[0], -1.0, hi)), wp.floor(wp.clamp(g[1], -1.0, hi)), wp.floor(wp.clamp(g[2], -1.0, hi))
    )
    return int(b[0]) + PAD, int(b[1]) + PAD, int(b[2]) + PAD, xp * inv_dx - b


@wp.func
def column(A: wp.mat33, c: int):
    """Column c of A; of a weight matrix (rows = nodes 0, 1, 2), the three nodes' weights along axis c."""
    return wp.vec3(A[0, c], A[1, c], A[2, c])


@wp.func
def weights(fx: wp.vec3):
    """Quadratic B-spline weights of the three nodes along each axis: rows = node 0, 1, 2."""
    w0 = 0.5 * wp.cw_mul(wp.vec3(1.5) - fx, wp.vec3(1.5) - fx)
    d1 = fx - wp.vec3(1.0)
    w1 = wp.vec3(0.75) - wp.cw_mul(d1, d1)
    d2 = fx - wp.vec3(0.5)
    w2 = 0.5 * wp.cw_mul(d2, d2)
    return wp.matrix_from_rows(w0, w1, w2)


@wp.func
def dweights(fx: wp.vec3):
    """d(weight)/d(fx) of the three nodes along each axis: rows = node 0, 1, 2."""
    return wp.matrix_from_rows(fx - wp.vec3(1.5), -2.0 * (fx - wp.vec3(1.0)), fx - wp.vec3(0.5))
