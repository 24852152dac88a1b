"""SVD of 3x3 matrices with rotations U, V (det +1) and a polar decomposition whose gradient stays finite when
singular values repeat (F = I included), as torch ops (kernels in `polar_kernels.py`).

`svd_rotation(F)` returns U, sigma, V with F = U diag(sigma) V^T and det U = det V = 1 (sigma_3 carries the sign
of det F). `polar_sigma(F)` returns R = U V^T and sigma; its backward uses the analytic polar-factor gradient

    dF = U K V^T,   K_ij = (M_ij - M_ji) / (sigma_i + sigma_j),   M = U^T dR V,   K_ii = dsigma_i,

whose denominators vanish only for singular (inverted) F, where they are clamped. torch.linalg.svd's own
backward divides by sigma_i^2 - sigma_j^2 and returns NaN at F = I (`reference.polar_sigma_reference` is that
composed-torch version, the test oracle away from repeated singular values). The SVD is float64 whatever the
input precision: Warp's float32 `svd3` leaves ~1e-4 reconstruction error.
"""

from __future__ import annotations

import torch
import warp as wp

from . import polar_kernels as pk
from ._warp import as_warp, launch

_EPS = 1e-6  # clamp of sigma_i + sigma_j in the polar gradient
_SCALAR = {torch.float32: wp.float32, torch.float64: wp.float64}


def _check(F: torch.Tensor, name: str) -> None:
    if F.dtype not in _SCALAR:
        raise TypeError(f"{name} supports float32 and float64, got {F.dtype}")
    if F.dim() != 3 or F.shape[1:] != (3, 3):
        raise ValueError(f"{name} expects [N, 3, 3] matrices, got shape {tuple(F.shape)}")


def svd_rotation(F: torch.Tensor):
    """U, sigma, V (no gradient) with F = U diag(sigma) V^T, U and V proper rotations (float64 `svd3_jacobi`),
    returned in F's dtype."""
    _check(F, "svd_rotation")
    dtype = F.dtype
    F = F.detach().to(torch.float64).contiguous()
    U, V = torch.empty_like(F), torch.empty_like(F)
    S = torch.empty(F.shape[:-1], dtype=F.dtype, device=F.device)
    if len(F):
        mat, vec = wp.mat33d, wp.vec3d
        launch(pk.svd_kernel, len(F), [as_warp(F, mat), as_warp(U, mat), as_warp(S, vec), as_warp(V, mat)],
               F.device)
    return U.to(dtype), S.to(dtype), V.to(dtype)


class _PolarSigma(torch.autograd.Function):
    # One Warp launch each way (SVD + R = U V^T forward, the whole polar gradient backward): the torch version
    # of these few 3x3 products cost more than the SVD itself at 1,000 particles.
    @staticmethod
    def forward(ctx, F):
        F = F.detach().contiguous()
        n = len(F)
        R = torch.empty_like(F)
        S = torch.empty(F.shape[:-1], dtype=F.dtype, device=F.device)
        U = torch.empty(F.shape, dtype=torch.float64, device=F.device)
        V = torch.empty_like(U)
        S64 = torch.empty(S.shape, dtype=torch.float64, device=F.device)
        if n:
            scalar = _SCALAR[F.dtype]
            vec, mat = pk.VEC_MAT[scalar]
            launch(pk.POLAR[scalar], n,
                   [as_warp(F, mat), as_warp(R, mat), as_warp(S, vec), as_warp(U, wp.mat33d), as_warp(S64, wp.vec3d),
                    as_warp(V, wp.mat33d)], F.device)
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
            scalar = _SCALAR[dtype]
            vec, mat = pk.VEC_MAT[scalar]
            launch(pk.POLAR_GRAD[scalar], n,
                   [as_warp(U, wp.mat33d), as_warp(S, wp.vec3d), as_warp(V, wp.mat33d),
                    as_warp(grad_R.to(dtype), mat), as_warp(grad_S.to(dtype), vec), wp.float64(_EPS),
                    as_warp(grad_F, mat)], U.device)
        return grad_F


def polar_sigma(F: torch.Tensor):
    """R [N,3,3] (rotation of the polar decomposition F = R S) and singular values sigma [N,3], differentiable."""
    _check(F, "polar_sigma")
    return _PolarSigma.apply(F)
