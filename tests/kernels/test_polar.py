"""polar_sigma / svd_rotation (Warp, float64 Jacobi SVD) against the composed-torch reference."""

import pytest
import torch
from meshsim.kernels import polar_sigma, svd_rotation
from meshsim.kernels.reference import polar_sigma_reference


def _matrices(n, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    F = torch.eye(3, dtype=torch.float64) + 0.3 * torch.randn(n, 3, 3, generator=g, dtype=torch.float64)
    F[: n // 4, :, 0] *= -1  # some inverted ones: sigma_3 < 0
    return F.to(dtype).to(device)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_and_gradients_match_the_reference(device, dtype):
    F = _matrices(200, dtype, device).requires_grad_(True)
    R, s = polar_sigma(F)
    R_ref, s_ref = polar_sigma_reference(F.detach().double().cpu().requires_grad_(True))
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert R.dtype == s.dtype == dtype and R.device == F.device
    torch.testing.assert_close(R.double().cpu(), R_ref.detach(), atol=tol, rtol=0)
    torch.testing.assert_close(s.double().cpu(), s_ref.detach(), atol=tol, rtol=0)
    g = torch.Generator().manual_seed(1)
    wR, ws = torch.randn(200, 3, 3, generator=g, dtype=torch.float64), torch.randn(200, 3, generator=g,
                                                                                    dtype=torch.float64)
    (grad,) = torch.autograd.grad((R * wR.to(R)).sum() + (s * ws.to(s)).sum(), F)
    Fr = F.detach().double().cpu().requires_grad_(True)
    Rr, sr = polar_sigma_reference(Fr)
    (grad_ref,) = torch.autograd.grad((Rr * wR).sum() + (sr * ws).sum(), Fr)
    torch.testing.assert_close(grad.double().cpu(), grad_ref, atol=1e-9 if dtype == torch.float64 else 1e-3,
                               rtol=1e-9 if dtype == torch.float64 else 1e-3)


def test_gradient_is_finite_at_repeated_singular_values(device):
    F = torch.eye(3, dtype=torch.float64, device=device).repeat(4, 1, 1).requires_grad_(True)
    R, s = polar_sigma(F)
    (grad,) = torch.autograd.grad(R.sum() + s.sum(), F)
    assert torch.isfinite(grad).all()
    U, S, V = svd_rotation(F)
    torch.testing.assert_close(S, torch.ones_like(S))


def test_bad_inputs_are_refused():
    with pytest.raises(TypeError, match="float32 and float64"):
        polar_sigma(torch.zeros(2, 3, 3, dtype=torch.float16))
    with pytest.raises(ValueError, match=r"\[N, 3, 3\]"):
        svd_rotation(torch.zeros(2, 2, 2))
    R, s = polar_sigma(torch.zeros(0, 3, 3))
    assert R.shape == (0, 3, 3) and s.shape == (0, 3)
