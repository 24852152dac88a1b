"""SVD of 3x3 deformation gradients with rotations U, V (det +1) and a polar decomposition whose gradient
stays finite when singular values repeat (F = I included).

`svd_rotation(F)` returns U, sigma, V with F = U diag(sigma) V^T and det U = det V = 1 (sigma_3 carries the sign
of det F). `polar_sigma(F)` returns R = U V^T and sigma; its backward uses the analytic polar-factor gradient

    dR = U K V^T,   K_ij = (M_ij - M_ji) / (sigma_i + sigma_j),   M = U^T dF V,

whose denominators vanish only for singular (inverted) F, where they are clamped, and dsigma_i = u_i^T dF v_i.
torch.linalg.svd's own backward divides by sigma_i^2 - sigma_j^2 and returns NaN at F = I.
"""

from __future__ import annotations

import torch

_EPS = 1e-6


def svd_rotation(F: torch.Tensor):
    """U, sigma, V (no gradient) with proper rotations U and V."""
    with torch.no_grad():
        U, S, Vh = torch.linalg.svd(F)
        V = Vh.transpose(-1, -2)
        # Flip the last column of U (and sigma_3) or of V so both are rotations.
        du, dv = torch.det(U), torch.det(V)
        flip_u = (du < 0).to(F.dtype)
        flip_v = (dv < 0).to(F.dtype)
        sign_u = torch.ones_like(S)
        sign_u[:, 2] = 1 - 2 * flip_u
        sign_v = torch.ones_like(S)
        sign_v[:, 2] = 1 - 2 * flip_v
        U = U * sign_u[:, None, :]
        V = V * sign_v[:, None, :]
        S = S * sign_u * sign_v
    return U, S, V


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
