"""The structured NCLaw networks: stress-free at rest, rotation-equivariant, finite polar gradients."""

import torch
from meshsim.kernels import polar_sigma

from meshsim.models.nclaw import NCLawElasticity, NCLawPlasticity, PlainElasticity


def _nets():
    torch.manual_seed(0)
    return NCLawElasticity().double(), NCLawPlasticity(alpha=0.1).double()


def _deformations(n=64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.eye(3, dtype=torch.float64) + 0.3 * torch.randn(n, 3, 3, generator=g, dtype=torch.float64)


def test_stress_free_and_identity_plasticity_at_rest(rotations):
    elastic, plastic = _nets()
    R = rotations(128)
    assert elastic.stress(R).abs().max() < 1e-10
    eye = torch.eye(3, dtype=torch.float64).repeat(8, 1, 1)
    # Zero up to the round-off of the float64 SVD (sigma = 1 +- 1e-16).
    assert elastic.stress(eye).abs().max() < 1e-12
    assert (plastic.project(eye) - eye).abs().max() < 1e-12
    assert (plastic.project(R) - R).abs().max() < 1e-10


def test_rotation_equivariance(rotations):
    elastic, plastic = _nets()
    F = _deformations()
    Q = rotations(len(F), seed=3)
    tau, tau_q = elastic.stress(F), elastic.stress(Q @ F)
    assert tau.abs().max() > 1e-3  # not trivially zero
    torch.testing.assert_close(tau_q, Q @ tau @ Q.transpose(-1, -2), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(plastic.project(Q @ F), Q @ plastic.project(F), rtol=1e-9, atol=1e-9)


def test_plain_network_is_not_stress_free(rotations):
    torch.manual_seed(0)
    plain = PlainElasticity().double()
    with torch.no_grad():
        for m in plain.mlp:
            if isinstance(m, torch.nn.Linear):
                m.bias.uniform_(-0.1, 0.1)
    assert plain.stress(rotations(16)).abs().max() > 1e-3


def test_polar_gradient_finite_at_identity_and_repeated_values(rotations):
    elastic, plastic = _nets()
    F = torch.eye(3, dtype=torch.float64).repeat(4, 1, 1)
    F[1] = torch.diag(torch.tensor([1.2, 1.2, 0.9], dtype=torch.float64))
    F[2] = 2.0 * rotations(1, seed=5)[0]
    F.requires_grad_(True)
    (elastic.stress(F).sum() + plastic.project(F).pow(2).sum()).backward()
    assert torch.isfinite(F.grad).all()
    R, s = polar_sigma(F)
    g = torch.autograd.grad(R.sum() + s.sum(), F)[0]
    assert torch.isfinite(g).all()
