"""Analytic laws: stress-free at rest, closed forms, return maps landing on their yield surfaces."""

import torch
from meshsim.kernels import svd_rotation

from meshsim.physics.materials import Corotated, DruckerPrager, Fluid, NeoHookean, VonMises, lame


def _strained(n=200, scale=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.eye(3, dtype=torch.float64) + scale * torch.randn(n, 3, 3, generator=g, dtype=torch.float64)


def test_elastic_laws_are_stress_free_under_rotation(rotations):
    R = rotations(32)
    for law in (Corotated(), NeoHookean(), VonMises(), DruckerPrager(), Fluid()):
        assert law.double().stress(R).abs().max() < 1e-6 * float(law.log_E.exp())


def test_corotated_uniaxial_closed_form():
    law = Corotated(E=1e5, nu=0.2).double()
    mu, lam = lame(1e5, 0.2)
    F = torch.diag(torch.tensor([1.1, 1.0, 1.0], dtype=torch.float64))[None]
    tau = law.stress(F)[0]
    J = 1.1
    p = lam * J * (J - 1)
    expected = torch.diag(torch.tensor([2 * mu * 0.1 * 1.1 + p, p, p], dtype=torch.float64))
    torch.testing.assert_close(tau, expected)


def test_von_mises_return_lands_on_yield_surface():
    law = VonMises(E=3e5, nu=0.25, yield_stress=5e3).double()
    mu, _ = lame(3e5, 0.25)
    F = _strained(scale=0.2)
    F[::2] = _strained(100, scale=0.005, seed=1)  # half of them stay elastic
    Fp = law.project(F)
    _, S, _ = svd_rotation(Fp)
    eps = torch.log(S)
    dev_norm = (eps - eps.mean(-1, keepdim=True)).norm(dim=-1)
    _, S0, _ = svd_rotation(F)
    eps0 = torch.log(S0)
    yielded = (eps0 - eps0.mean(-1, keepdim=True)).norm(dim=-1) > 5e3 / (2 * mu)
    assert yielded.sum() > 50 and (~yielded).sum() > 20
    torch.testing.assert_close(2 * mu * dev_norm[yielded], torch.full_like(dev_norm[yielded], 5e3))
    torch.testing.assert_close(Fp[~yielded], F[~yielded])
    # Volume (trace of the log strain) is untouched by the deviatoric return.
    torch.testing.assert_close(eps.sum(-1), eps0.sum(-1))


def test_drucker_prager_return_lands_on_cone_or_tip():
    law = DruckerPrager(E=1e6, nu=0.2, friction_angle=25).double()
    F = _strained(400, scale=0.15, seed=2)
    f0 = law.yield_function(F)
    _, S0, _ = svd_rotation(F)
    tr0 = torch.log(S0).sum(-1)
    Fp = law.project(F)
    f1 = law.yield_function(Fp)
    _, S1, _ = svd_rotation(Fp)
    cone = (f0 > 0) & (tr0 <= 0)
    tip = tr0 > 0
    assert cone.sum() > 10 and tip.sum() > 10
    assert f1[cone].abs().max() < 1e-9  # on the surface
    torch.testing.assert_close(S1[tip], torch.ones_like(S1[tip]))  # stress-free tip
    inside = (f0 <= 0) & (tr0 <= 0)
    torch.testing.assert_close(Fp[inside], F[inside])
    assert (f1 <= 1e-9).all()


def test_fluid_has_no_deviatoric_stress_and_resets_shape():
    law = Fluid().double()
    F = _strained(50, scale=0.1)
    tau = law.stress(F)
    dev = tau - tau.diagonal(dim1=-2, dim2=-1).mean(-1)[:, None, None] * torch.eye(3, dtype=torch.float64)
    assert dev.abs().max() < 1e-9 * tau.abs().max()
    Fp = law.project(F)
    torch.testing.assert_close(torch.det(Fp), torch.det(F))
    torch.testing.assert_close(Fp - Fp.diagonal(dim1=-2, dim2=-1)[:, :1, None] * torch.eye(3, dtype=torch.float64),
                               torch.zeros_like(F))
