"""SVD of 3x3 deformation gradients with rotations U, V (det +1) and a polar decomposition whose gradient
stays finite when singular values repeat (F = I included).

`svd_rotation(F)` returns U, sigma, V with F = U diag(sigma) V^T and det U = det V = 1 (sigma_3 carries the sign
of det F). `polar_sigma(F)` returns R = U V^T and sigma; its backward uses the analytic polar-factor gradient

    dR = U K V^T,   K_ij = (M_ij - M_ji) / (sigma_i + sigma_j),   M = U^T dF V,

whose denominators vanish only for singular (inverted) F, where they are clamped, and dsigma_i = u_i^T dF v_i.
torch.linalg.svd's own backward divides by sigma_i^2 - sigma_j^2 and returns NaN at F = I.

The SVD itself (`svd3_jacobi`) is computed in float64 as Warp's `wp.svd3` does it (eigenvectors V of F^T F,
columns of F V sorted by norm with sign flips that keep V a rotation, then a Givens QR of F V = U R), but with
exact Jacobi rotations that converge quadratically and stop once the off-diagonal vanishes, instead of eight
fixed sweeps of approximate ones: half the time, and a reconstruction error of ~2e-15 instead of ~1e-14.
"""

from __future__ import annotations

from typing import Any

import torch
import warp as wp

from meshsim.kernels import init_warp

_EPS = 1e-6


wp.set_module_options({"enable_backward": False})  # gradients are the torch Functions' business


@wp.func
def _jacobi_rotation(S: wp.mat33d, V: wp.mat33d, p: int, q: int, r: int):
    """One exact Jacobi rotation of symmetric S zeroing S[p, q] (r is the third index), accumulated into V."""
    apq = S[p, q]
    app = S[p, p]
    aqq = S[q, q]
    if wp.abs(apq) > wp.float64(1e-18) * (wp.abs(app) + wp.abs(aqq)):
        tau = (aqq - app) / (wp.float64(2.0) * apq)
        t = wp.float64(1.0) / (wp.abs(tau) + wp.sqrt(wp.float64(1.0) + tau * tau))  # the smaller root of t
        if tau < wp.float64(0.0):
            t = -t
        c = wp.float64(1.0) / wp.sqrt(wp.float64(1.0) + t * t)
        s = t * c
        arp = S[r, p]
        arq = S[r, q]
        S[p, p] = app - t * apq
        S[q, q] = aqq + t * apq
        S[p, q] = wp.float64(0.0)
        S[q, p] = wp.float64(0.0)
        S[r, p] = c * arp - s * arq
        S[p, r] = S[r, p]
        S[r, q] = s * arp + c * arq
        S[q, r] = S[r, q]
        for k in range(3):
            vp = V[k, p]
            vq = V[k, q]
            V[k, p] = c * vp - s * vq
            V[k, q] = s * vp + c * vq
    return S, V


@wp.func
def _swap_columns(c: bool, B: wp.mat33d, a: int, b: int):
    """If c: column a <- column b, column b <- -column a (a rotation, so V stays proper)."""
    if c:
        for r in range(3):
            x = B[r, a]
            B[r, a] = B[r, b]
            B[r, b] = -x
    return B


@wp.func
def svd3_jacobi(A: wp.mat33d):
    """U, sigma, V of A (float64) with the conventions of `wp.svd3`: U, V rotations, |sigma| sorted
    descending, sigma_1, sigma_2 >= 0 and sigma_3 signed like det A."""
    S = wp.transpose(A) * A
    V = wp.identity(n=3, dtype=wp.float64)
    for _sweep in range(5):  # cyclic sweeps; converged matrices skip their rotations (3x3 needs 2-4)
        S, V = _jacobi_rotation(S, V, 0, 1, 2)
        S, V = _jacobi_rotation(S, V, 1, 2, 0)
        S, V = _jacobi_rotation(S, V, 0, 2, 1)
    B = A * V
    n0 = wp.length_sq(wp.vec3d(B[0, 0], B[1, 0], B[2, 0]))
    n1 = wp.length_sq(wp.vec3d(B[0, 1], B[1, 1], B[2, 1]))
    n2 = wp.length_sq(wp.vec3d(B[0, 2], B[1, 2], B[2, 2]))
    c = n0 < n1
    B = _swap_columns(c, B, 0, 1)
    V = _swap_columns(c, V, 0, 1)
    if c:
        t = n0
        n0 = n1
        n1 = t
    c = n0 < n2
    B = _swap_columns(c, B, 0, 2)
    V = _swap_columns(c, V, 0, 2)
    if c:
        t = n0
        n0 = n2
        n2 = t
    c = n1 < n2
    B = _swap_columns(c, B, 1, 2)
    V = _swap_columns(c, V, 1, 2)
    U, R = wp.qr3(B)
    return U, wp.vec3d(R[0, 0], R[1, 1], R[2, 2]), V


@wp.kernel
def _svd_kernel(
    F: wp.array(dtype=wp.mat33d),
    U: wp.array(dtype=wp.mat33d),
    S: wp.array(dtype=wp.vec3d),
    V: wp.array(dtype=wp.mat33d),
):
    i = wp.tid()
    u, s, v = svd3_jacobi(F[i])
    U[i] = u
    S[i] = s
    V[i] = v


_TYPES = (torch.float32, torch.float64)


def svd_rotation(F: torch.Tensor):
    """U, sigma, V (no gradient) with F = U diag(sigma) V^T, U and V proper rotations (float64 `svd3_jacobi`)."""
    if F.dtype not in _TYPES:
        raise TypeError(f"svd_rotation supports float32 and float64, got {F.dtype}")
    init_warp()
    # Always float64: Warp's float32 svd3 leaves ~1e-4 reconstruction error.
    mat, vec = wp.mat33d, wp.vec3d
    dtype = F.dtype
    F = F.detach().to(torch.float64).contiguous()
    U, V = torch.empty_like(F), torch.empty_like(F)
    S = torch.empty(F.shape[:-1], dtype=F.dtype, device=F.device)
    if len(F):
        wp.launch(_svd_kernel, len(F), inputs=[wp.from_torch(F, dtype=mat)],
                  outputs=[wp.from_torch(U, dtype=mat), wp.from_torch(S, dtype=vec), wp.from_torch(V, dtype=mat)],
                  device=_device(F), record_tape=False)
    return U.to(dtype), S.to(dtype), V.to(dtype)


@wp.kernel
def _polar_kernel(
    F: wp.array(dtype=Any),
    R: wp.array(dtype=Any),
    S: wp.array(dtype=Any),
    U: wp.array(dtype=wp.mat33d),
    S64: wp.array(dtype=wp.vec3d),
    V: wp.array(dtype=wp.mat33d),
):
    # The SVD in float64 whatever F's precision; R = U V^T and sigma come back in F's precision, the factors
    # stay float64 for the backward.
    i = wp.tid()
    u, s, v = svd3_jacobi(wp.mat33d(F[i]))
    U[i] = u
    S64[i] = s
    V[i] = v
    R[i] = type(F[i])(u * wp.transpose(v))
    S[i] = type(S[i])(s)


@wp.kernel
def _polar_grad_kernel(
    U: wp.array(dtype=wp.mat33d),
    S: wp.array(dtype=wp.vec3d),
    V: wp.array(dtype=wp.mat33d),
    grad_R: wp.array(dtype=Any),
    grad_S: wp.array(dtype=Any),
    eps: wp.float64,
    grad_F: wp.array(dtype=Any),
):
    # dF = U K V^T with K = skew(U^T dR V) / (sigma_i + sigma_j) off the diagonal and dsigma on it.
    i = wp.tid()
    u = U[i]
    v = V[i]
    s = S[i]
    G = wp.transpose(u) * wp.mat33d(grad_R[i]) * v
    gs = wp.vec3d(grad_S[i])
    K = wp.mat33d(0.0)
    for a in range(3):
        K[a, a] = gs[a]
        for b in range(3):
            if a != b:
                d = s[a] + s[b]
                if wp.abs(d) < eps:
                    d = eps
                K[a, b] = (G[a, b] - G[b, a]) / d
    grad_F[i] = type(grad_F[i])(u * K * wp.transpose(v))


# Concrete overloads, launched directly: resolving a generic kernel from its arguments costs more per launch
# (~0.1 ms) than the whole polar gradient at 1,000 particles.
_VEC_MAT = {torch.float32: (wp.vec3, wp.mat33), torch.float64: (wp.vec3d, wp.mat33d)}
_POLAR = {t: wp.overload(_polar_kernel, {"F": wp.array(dtype=m), "R": wp.array(dtype=m), "S": wp.array(dtype=v)})
          for t, (v, m) in _VEC_MAT.items()}
_POLAR_GRAD = {
    t: wp.overload(_polar_grad_kernel,
                   {"grad_R": wp.array(dtype=m), "grad_S": wp.array(dtype=v), "grad_F": wp.array(dtype=m)})
    for t, (v, m) in _VEC_MAT.items()
}


def _device(t: torch.Tensor) -> str:
    return "cpu" if t.device.type == "cpu" else f"cuda:{t.device.index or 0}"


class _PolarSigma(torch.autograd.Function):
    # One Warp launch each way (SVD + R = U V^T forward, the whole polar gradient backward): the torch version
    # of these few 3x3 products cost more than the SVD itself at 1,000 particles.
    @staticmethod
    def forward(ctx, F):
        if F.dtype not in _TYPES:
            raise TypeError(f"polar_sigma supports float32 and float64, got {F.dtype}")
        init_warp()
        F = F.detach().contiguous()
        n = len(F)
        R = torch.empty_like(F)
        S = torch.empty(F.shape[:-1], dtype=F.dtype, device=F.device)
        U = torch.empty(F.shape, dtype=torch.float64, device=F.device)
        V = torch.empty_like(U)
        S64 = torch.empty(S.shape, dtype=torch.float64, device=F.device)
        if n:
            vec, mat = _VEC_MAT[F.dtype]
            wp.launch(_POLAR[F.dtype], n, inputs=[wp.from_torch(F, dtype=mat)],
                      outputs=[wp.from_torch(R, dtype=mat), wp.from_torch(S, dtype=vec),
                               wp.from_torch(U, dtype=wp.mat33d), wp.from_torch(S64, dtype=wp.vec3d),
                               wp.from_torch(V, dtype=wp.mat33d)],
                      device=_device(F), record_tape=False)
        ctx.save_for_backward(U, S64, V)
        ctx.dtype = F.dtype
        return R, S

    @staticmethod
    def backward(ctx, grad_R, grad_S):
        U, S, V = ctx.saved_tensors
        n, dtype = len(U), ctx.dtype
        grad_R = torch.zeros(U.shape, dtype=dtype, device=U.device) if grad_R is None else grad_R.contiguous()
        grad_S = torch.zeros(S.shape, dtype=dtype, device=U.device) if grad_S is None else grad_S.contiguous()
        grad_F = torch.empty(U.shape, dtype=dtype, device=U.device)
        if n:
            vec, mat = _VEC_MAT[dtype]
            wp.launch(_POLAR_GRAD[dtype], n,
                      inputs=[wp.from_torch(U, dtype=wp.mat33d), wp.from_torch(S, dtype=wp.vec3d),
                              wp.from_torch(V, dtype=wp.mat33d), wp.from_torch(grad_R.to(dtype), dtype=mat),
                              wp.from_torch(grad_S.to(dtype), dtype=vec), wp.float64(_EPS)],
                      outputs=[wp.from_torch(grad_F, dtype=mat)], device=_device(U), record_tape=False)
        return grad_F


def polar_sigma(F: torch.Tensor):
    """R [N,3,3] (rotation of the polar decomposition F = R S) and singular values sigma [N,3], differentiable."""
    return _PolarSigma.apply(F)
