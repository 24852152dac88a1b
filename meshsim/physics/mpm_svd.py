"""SVD of 3x3 deformation gradients with rotations U, V (det +1) and a polar decomposition whose gradient
stays finite when singular values repeat (F = I included).

`svd_rotation(F)` returns U, sigma, V with F = U diag(sigma) V^T and det U = det V = 1 (sigma_3 carries the sign
of det F). `polar_sigma(F)` returns R = U V^T and sigma; its backward uses the analytic polar-factor gradient

    dR = U K V^T,   K_ij = (M_ij - M_ji) / (sigma_i + sigma_j),   M = U^T dF V,

whose denominators vanish only for singular (inverted) F, where they are clamped, and dsigma_i = u_i^T dF v_i.
torch.linalg.svd's own backward divides by sigma_i^2 - sigma_j^2 and returns NaN at F = I.
"""

from __future__ import annotations

from typing import Any

import torch
import warp as wp

from meshsim.kernels import init_warp

_EPS = 1e-6


@wp.kernel
def _svd_kernel(F: wp.array(dtype=Any), U: wp.array(dtype=Any), S: wp.array(dtype=Any), V: wp.array(dtype=Any)):
    # Generic over precision; Warp's svd3 returns rotations U, V and sigma_3 signed like det F.
    i = wp.tid()
    u, s, v = wp.svd3(F[i])
    U[i] = u
    S[i] = s
    V[i] = v


_TYPES = (torch.float32, torch.float64)


def svd_rotation(F: torch.Tensor):
    """U, sigma, V (no gradient) with F = U diag(sigma) V^T, U and V proper rotations (Warp svd3 kernel)."""
    if F.dtype not in _TYPES:
        raise TypeError(f"svd_rotation supports float32 and float64, got {F.dtype}")
    init_warp()
    # Always float64: float32 Jacobi sweeps leave ~1e-4 reconstruction error.
    mat, vec = wp.mat33d, wp.vec3d
    dtype = F.dtype
    F = F.detach().to(torch.float64).contiguous()
    U, V = torch.empty_like(F), torch.empty_like(F)
    S = torch.empty(F.shape[:-1], dtype=F.dtype, device=F.device)
    if len(F):
        dev = "cpu" if F.device.type == "cpu" else f"cuda:{F.device.index or 0}"
        wp.launch(_svd_kernel, len(F), inputs=[wp.from_torch(F, dtype=mat)],
                  outputs=[wp.from_torch(U, dtype=mat), wp.from_torch(S, dtype=vec), wp.from_torch(V, dtype=mat)],
                  device=dev, record_tape=False)
    return U.to(dtype), S.to(dtype), V.to(dtype)


class _PolarSigma(torch.autograd.Function):
    @staticmethod
    def forward(ctx, F):
        U, S, V = svd_rotation(F)
        ctx.save_for_backward(U, S, V)
        return U @ V.transpose(-1, -2), S

    @staticmethod
    def backward(ctx, grad_R, grad_S):
        U, S, V = ctx.saved_tensors
        K = torch.zeros_like(U)
        if grad_R is not None:
            G = U.transpose(-1, -2) @ grad_R @ V
            denom = S[:, :, None] + S[:, None, :]
            denom = torch.where(denom.abs() < _EPS, torch.full_like(denom, _EPS), denom)
            K = (G - G.transpose(-1, -2)) / denom
        if grad_S is not None:
            K = K + torch.diag_embed(grad_S)
        return U @ K @ V.transpose(-1, -2)


def polar_sigma(F: torch.Tensor):
    """R [N,3,3] (rotation of the polar decomposition F = R S) and singular values sigma [N,3], differentiable."""
    return _PolarSigma.apply(F)
