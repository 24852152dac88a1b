"""Constitutive laws for the FEM solver: first Piola-Kirchhoff stress P(F) and energy density psi(F).

Three isotropic laws, all parametrised by the Lame constants (mu, lam) so that their small-strain limit is the
same linear elasticity (this is what lets one test check sigma/E for every law):

- ``linear``: psi = mu |eps|^2 + lam/2 tr(eps)^2 with eps = sym(F) - I (not rotation invariant).
- ``corotated`` (fixed corotated, Stomakhin et al. 2012): psi = mu |F - R|^2 + lam/2 (J - 1)^2.
- ``neohookean`` (stable Neo-Hookean, Smith et al. 2018, without the log term):
  psi = mu/2 (I_C - d) - mu (J - 1) + (lam + mu)/2 (J - 1)^2; zero stress at rest, finite under inversion.

Warp functions are built per (dimension, scalar type) by `make_laws`, so one code path serves 2D triangles
and 3D tetrahedra in float32 (datasets) and float64 (gradient tests).
"""


import functools

import warp as wp

MATERIALS = ("linear", "corotated", "neohookean")
MATERIAL_ID = {name: i for i, name in enumerate(MATERIALS)}


def lame(youngs_modulus, poisson_ratio, plane_stress: bool = False):
    """Lame constants (mu, lam) from E and nu; plane stress uses the reduced lam* = 2 mu lam / (lam + 2 mu)."""
    mu = youngs_modulus / (2.0 * (1.0 + poisson_ratio))
    lam = youngs_modulus * poisson_ratio / ((1.0 + poisson_ratio) * (1.0 - 2.0 * poisson_ratio))
    if plane_stress:
        lam = 2.0 * mu * lam / (lam + 2.0 * mu)
    return mu, lam


@functools.cache
def make_laws(dim: int, scalar):
    """Warp functions `piola(F, mu, lam, material)`, `energy(F, mu, lam, material)`, `cauchy(F, P)`,
    `rotation(F)` for `dim` x `dim` matrices of `scalar` (wp.float32 or wp.float64)."""
    M = wp.types.matrix(shape=(dim, dim), dtype=scalar)
    V = wp.types.vector(length=dim, dtype=scalar)
    one = scalar(1.0)
    half = scalar(0.5)
    fdim = scalar(float(dim))

    @wp.func
    def cofactor(F: M) -> M:
        # d det(F) / dF = J F^-T, written without the inverse so it stays finite at J = 0.
        if wp.static(dim == 2):
            return M(F[1, 1], -F[1, 0], -F[0, 1], F[0, 0])
        else:
            c0 = wp.vector(F[0, 0], F[1, 0], F[2, 0])
            c1 = wp.vector(F[0, 1], F[1, 1], F[2, 1])
            c2 = wp.vector(F[0, 2], F[1, 2], F[2, 2])
            return wp.matrix_from_cols(wp.cross(c1, c2), wp.cross(c2, c0), wp.cross(c0, c1))

    @wp.func
    def rotation(F: M) -> M:
        """Rotation of the polar decomposition F = R S (a reflection-free R, also for inverted F)."""
        if wp.static(dim == 2):
            a = wp.atan2(F[1, 0] - F[0, 1], F[0, 0] + F[1, 1])
            c = wp.cos(a)
            s = wp.sin(a)
            return M(c, -s, s, c)
        else:
            U = M()
            sig = V()
            W = M()
            wp.svd3(F, U, sig, W)
            R = U * wp.transpose(W)
            if wp.determinant(R) < scalar(0.0):
                U = wp.matrix_from_cols(wp.vector(U[0, 0], U[1, 0], U[2, 0]), wp.vector(U[0, 1], U[1, 1], U[2, 1]),
                                        -wp.vector(U[0, 2], U[1, 2], U[2, 2]))
                R = U * wp.transpose(W)
            return R

    @wp.func
    def piola(F: M, mu: scalar, lam: scalar, material: int) -> M:
        I = wp.identity(n=dim, dtype=scalar)
        if material == 0:
            eps = half * (F + wp.transpose(F)) - I
            return scalar(2.0) * mu * eps + lam * wp.trace(eps) * I
        J = wp.determinant(F)
        C = cofactor(F)
        if material == 1:
            R = rotation(F)
            return scalar(2.0) * mu * (F - R) + lam * (J - one) * C
        return mu * F + ((lam + mu) * (J - one) - mu) * C

    @wp.func
    def energy(F: M, mu: scalar, lam: scalar, material: int) -> scalar:
        I = wp.identity(n=dim, dtype=scalar)
        if material == 0:
            eps = half * (F + wp.transpose(F)) - I
            tr = wp.trace(eps)
            return mu * wp.ddot(eps, eps) + half * lam * tr * tr
        J = wp.determinant(F)
        if material == 1:
            D = F - rotation(F)
            return mu * wp.ddot(D, D) + half * lam * (J - one) * (J - one)
        return half * mu * (wp.ddot(F, F) - fdim) - mu * (J - one) + half * (lam + mu) * (J - one) * (J - one)

    @wp.func
    def von_mises(F: M, P: M, mu: scalar, lam: scalar, plane_stress: int) -> scalar:
        """Von Mises stress of the Cauchy stress sigma = P F^T / J (2D: sigma_zz from plane strain/stress)."""
        J = wp.determinant(F)
        t = P * wp.transpose(F) / wp.max(J, scalar(1.0e-6))
        s = half * (t + wp.transpose(t))  # symmetric for the hyperelastic laws; linear elasticity is not
        if wp.static(dim == 2):
            szz = scalar(0.0)
            if plane_stress == 0:
                szz = lam / (scalar(2.0) * (lam + mu)) * (s[0, 0] + s[1, 1])
            d1 = s[0, 0] - s[1, 1]
            d2 = s[1, 1] - szz
            d3 = szz - s[0, 0]
            q = half * (d1 * d1 + d2 * d2 + d3 * d3) + scalar(3.0) * s[0, 1] * s[0, 1]
            return wp.sqrt(wp.max(q, scalar(0.0)))
        else:
            d1 = s[0, 0] - s[1, 1]
            d2 = s[1, 1] - s[2, 2]
            d3 = s[2, 2] - s[0, 0]
            sh = s[0, 1] * s[0, 1] + s[1, 2] * s[1, 2] + s[0, 2] * s[0, 2]
            q = half * (d1 * d1 + d2 * d2 + d3 * d3) + scalar(3.0) * sh
            return wp.sqrt(wp.max(q, scalar(0.0)))

    return piola, energy, von_mises, rotation
