"""Analytic constitutive laws for MPM as torch modules on deformation gradients F [N, 3, 3].

A material has two maps, used in NCLaw's order around each MPM step:

    tau = material.stress(F)      Kirchhoff stress P F^T, fed to P2G
    F   = material.project(F)     return mapping of the trial F after G2P (identity for elastic laws)

Laws (E Young's modulus, nu Poisson's ratio, mu/lambda the Lame parameters):
  corotated      tau = 2 mu (F - R) F^T + lambda J (J - 1) I                   (jelly)
  neo_hookean    tau = mu (F F^T - I) + lambda ln(J) I
  hencky         tau = U (2 mu ln(sigma) + lambda tr(ln sigma)) U^T
  von_mises      hencky + return of the deviatoric Hencky strain to |dev eps| = yield / (2 mu)   (plasticine)
  drucker_prager hencky + Klar et al. 2016 sand return (cone with friction angle, no cohesion)  (sand)
  fluid          tau = K J (J - 1) I, F reset to J^(1/3) I                        (water, weakly compressible)

Moduli are stored as log parameters (frozen by default) so a caller can fit them by gradient descent.
The plastic laws take the SVD without gradient: they generate ground truth, they are not fitted.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from meshsim.errors import ConfigError
from meshsim.kernels import polar_sigma, svd_rotation


def lame(E, nu):
    """(mu, lambda) from Young's modulus and Poisson's ratio (tensors or floats)."""
    return E / (2 * (1 + nu)), E * nu / ((1 + nu) * (1 - 2 * nu))


def _eye(F):
    return torch.eye(3, dtype=F.dtype, device=F.device).expand_as(F)


class Material(nn.Module):
    """Base: an elastic law with Young's modulus and Poisson's ratio and no plasticity."""

    def __init__(self, E: float = 1e5, nu: float = 0.2):
        super().__init__()
        if not E > 0 or not -1 < nu < 0.5:
            raise ConfigError(f"material needs E > 0 and -1 < nu < 0.5, got E={E}, nu={nu}")
        self.log_E = nn.Parameter(torch.tensor(math.log(E), dtype=torch.float64), requires_grad=False)
        self.nu = nn.Parameter(torch.tensor(float(nu), dtype=torch.float64), requires_grad=False)

    def lame(self, F):
        return lame(self.log_E.exp().to(F.dtype), self.nu.to(F.dtype))

    def stress(self, F: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def project(self, F: torch.Tensor) -> torch.Tensor:
        return F

    def forward(self, F: torch.Tensor) -> torch.Tensor:
        return self.stress(F)

    def params(self) -> dict:
        return {"E": float(self.log_E.exp()), "nu": float(self.nu)}


class Corotated(Material):
    def stress(self, F):
        mu, lam = self.lame(F)
        R, _ = polar_sigma(F)
        J = torch.det(F)[:, None, None]
        return 2 * mu * (F - R) @ F.transpose(-1, -2) + lam * J * (J - 1) * _eye(F)


class NeoHookean(Material):
    def stress(self, F):
        mu, lam = self.lame(F)
        J = torch.det(F).clamp_min(1e-6)[:, None, None]
        return mu * (F @ F.transpose(-1, -2) - _eye(F)) + lam * torch.log(J) * _eye(F)


class Hencky(Material):
    """Hencky (logarithmic-strain) elasticity, the elastic part of the plasticine and sand laws."""

    min_sigma = 0.05  # singular values are clamped before the log (large compression)

    def stress(self, F):
        mu, lam = self.lame(F)
        U, S, _ = svd_rotation(F)
        eps = torch.log(S.clamp_min(self.min_sigma))
        diag = 2 * mu * eps + lam * eps.sum(-1, keepdim=True)
        return U @ torch.diag_embed(diag) @ U.transpose(-1, -2)


class VonMises(Hencky):
    """Plasticine: Hencky elasticity with von Mises return mapping on the deviatoric log strain."""

    def __init__(self, E: float = 3e5, nu: float = 0.25, yield_stress: float = 5e3):
        super().__init__(E, nu)
        if not yield_stress > 0:
            raise ConfigError(f"von_mises yield_stress must be > 0 Pa, got {yield_stress}")
        self.log_yield = nn.Parameter(torch.tensor(math.log(yield_stress), dtype=torch.float64), requires_grad=False)

    def project(self, F):
        mu, _ = self.lame(F)
        U, S, V = svd_rotation(F)
        eps = torch.log(S.clamp_min(self.min_sigma))
        dev = eps - eps.mean(-1, keepdim=True)
        norm = dev.norm(dim=-1, keepdim=True)
        excess = norm - self.log_yield.exp().to(F.dtype) / (2 * mu)
        scale = torch.where(excess > 0, excess / norm.clamp_min(1e-12), torch.zeros_like(norm))
        eps = eps - scale * dev
        return U @ torch.diag_embed(torch.exp(eps)) @ V.transpose(-1, -2)

    def params(self):
        return {**super().params(), "yield_stress": float(self.log_yield.exp())}


class DruckerPrager(Hencky):
    """Sand: Hencky elasticity with the Drucker-Prager return of Klar et al. (2016), cohesionless."""

    def __init__(self, E: float = 1e6, nu: float = 0.2, friction_angle: float = 25.0):
        super().__init__(E, nu)
        if not 0 < friction_angle < 90:
            raise ConfigError(f"drucker_prager friction_angle must be in (0, 90) degrees, got {friction_angle}")
        s = math.sin(math.radians(friction_angle))
        self.friction_angle = friction_angle
        self.alpha = math.sqrt(2 / 3) * 2 * s / (3 - s)

    def yield_function(self, F):
        """Cone value |dev eps| + alpha (3 lambda + 2 mu)/(2 mu) tr eps; <= 0 is admissible (for tests)."""
        mu, lam = self.lame(F)
        _, S, _ = svd_rotation(F)
        eps = torch.log(S.clamp_min(self.min_sigma))
        dev = eps - eps.mean(-1, keepdim=True)
        return dev.norm(dim=-1) + self.alpha * (3 * lam + 2 * mu) / (2 * mu) * eps.sum(-1)

    def project(self, F):
        mu, lam = self.lame(F)
        U, S, V = svd_rotation(F)
        eps = torch.log(S.clamp_min(self.min_sigma))
        tr = eps.sum(-1, keepdim=True)
        dev = eps - tr / 3
        norm = dev.norm(dim=-1, keepdim=True)
        gamma = norm + (3 * lam + 2 * mu) / (2 * mu) * tr * self.alpha
        ret = eps - gamma * dev / norm.clamp_min(1e-12)
        eps = torch.where(gamma <= 0, eps, ret)  # inside the cone: elastic
        eps = torch.where(tr > 0, torch.zeros_like(eps), eps)  # expansion: back to the tip (stress free)
        return U @ torch.diag_embed(torch.exp(eps)) @ V.transpose(-1, -2)

    def params(self):
        return {**super().params(), "friction_angle": self.friction_angle}


class Fluid(Material):
    """Weakly compressible fluid: pressure from volume change only, bulk modulus = lambda(E, nu)."""

    def __init__(self, E: float = 1e5, nu: float = 0.3):
        super().__init__(E, nu)

    def stress(self, F):
        _, lam = self.lame(F)
        J = torch.det(F)[:, None, None]
        return lam * J * (J - 1) * _eye(F)

    def project(self, F):
        J = torch.det(F).clamp_min(1e-6)
        return J.pow(1.0 / 3.0)[:, None, None] * _eye(F)


LAWS = {
    "corotated": Corotated,
    "neo_hookean": NeoHookean,
    "hencky": Hencky,
    "von_mises": VonMises,
    "drucker_prager": DruckerPrager,
    "fluid": Fluid,
}

PRESETS = {
    "jelly": ("corotated", {"E": 1e5, "nu": 0.2}),
    "plasticine": ("von_mises", {"E": 3e5, "nu": 0.25, "yield_stress": 5e3}),
    "sand": ("drucker_prager", {"E": 1e6, "nu": 0.2, "friction_angle": 25.0}),
    "water": ("fluid", {"E": 1e5, "nu": 0.3}),
}


def make_material(law: str, **params) -> Material:
    if law not in LAWS:
        raise ConfigError(f"unknown material law {law!r}; choose one of {', '.join(LAWS)}")
    try:
        return LAWS[law](**params)
    except TypeError as err:
        raise ConfigError(f"material law {law!r}: {err}") from None


def preset(name: str) -> Material:
    """The ground-truth law of a named material: jelly, plasticine, sand or water."""
    if name not in PRESETS:
        raise ConfigError(f"unknown material {name!r}; choose one of {', '.join(PRESETS)}")
    law, params = PRESETS[name]
    return make_material(law, **params)


class MaterialMix(nn.Module):
    """Several materials in one particle set: material_id [N] selects the law of each particle."""

    def __init__(self, materials: list, material_id: torch.Tensor):
        super().__init__()
        self.materials = nn.ModuleList(materials) if all(isinstance(m, nn.Module) for m in materials) else materials
        self.groups = [torch.nonzero(material_id == i).squeeze(1) for i in range(len(materials))]

    def _apply_each(self, F, fn):
        out = torch.empty_like(F)
        for mat, idx in zip(self.materials, self.groups, strict=True):
            if len(idx):
                out = out.index_put((idx,), fn(mat, F[idx]))
        return out

    def stress(self, F):
        return self._apply_each(F, lambda m, f: m.stress(f))

    def project(self, F):
        return self._apply_each(F, lambda m, f: m.project(f))
