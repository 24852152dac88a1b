"""polar_sigma / svd_rotation (Warp, float64 Jacobi SVD) against the composed-torch reference, numpy's SVD and
finite differences."""

import numpy as np
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


def test_svd_matches_numpy_with_warp_conventions():
    """The float64 Jacobi SVD: F = U diag(sigma) V^T to 1e-13, U and V rotations, |sigma| sorted and equal to
    numpy's, sigma_3 signed like det F; on random, near-identity, repeated, inverted and near-singular F."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(7)
    n = 400
    R1, R2 = Rotation.random(n, random_state=1).as_matrix(), Rotation.random(n, random_state=2).as_matrix()

    def with_sigma(s):
        return R1 @ (s[:, :, None] * np.eye(3)) @ R2.transpose(0, 2, 1)

    cases = [
        rng.normal(size=(n, 3, 3)) * np.exp(rng.uniform(-3, 3, (n, 1, 3))),
        np.eye(3) + 1e-3 * rng.normal(size=(n, 3, 3)),
        np.tile(np.eye(3), (n, 1, 1)),
        with_sigma(np.repeat(rng.uniform(0.7, 1.3, (n, 1)), 3, 1)),
        with_sigma(rng.uniform(0.5, 1.5, (n, 3)) * [1, 1, -1]),
        with_sigma(rng.uniform(0.5, 1.5, (n, 3)) * [1, 1, 1e-7]),
    ]
    for F in cases:
        U, S, V = (t.numpy() for t in svd_rotation(torch.as_tensor(F)))
        USVt = U @ (S[:, :, None] * np.eye(3)) @ V.transpose(0, 2, 1)
        np.testing.assert_allclose(USVt, F, atol=1e-13 * np.abs(F).max())
        for Q in (U, V):
            np.testing.assert_allclose(Q @ Q.transpose(0, 2, 1), np.tile(np.eye(3), (n, 1, 1)), atol=1e-13)
            np.testing.assert_allclose(np.linalg.det(Q), 1, atol=1e-13)
        np.testing.assert_allclose(np.abs(S), np.linalg.svd(F, compute_uv=False), rtol=1e-12, atol=1e-14)
        assert (S[:, :2] >= 0).all() and (np.sign(S[:, 2]) == np.sign(np.linalg.det(F))).all()


def test_polar_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(7)
    F = torch.eye(3, dtype=torch.float64) + 0.3 * torch.randn(8, 3, 3, generator=g, dtype=torch.float64)
    F.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f: polar_sigma(f), (F,), eps=1e-6, atol=1e-6)
    # Near-repeated singular values (F = I + 1e-6 N): the 1/(s_i + s_j) form stays accurate.
    G = (torch.eye(3, dtype=torch.float64) + 1e-6 * torch.randn(4, 3, 3, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f: polar_sigma(f)[0], (G,), eps=1e-8, atol=1e-5)
