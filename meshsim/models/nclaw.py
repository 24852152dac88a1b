"""Neural constitutive laws (NCLaw): elasticity F -> tau and plasticity F -> F networks for MPM.

Structured networks (the method):
    inputs  z = [sigma - 1, vec(F^T F - I), det F - 1]        all invariant under F -> Q F, all 0 at rest
    M       = sym(MLP(z)),  MLP bias-free with GELU (GELU(0) = 0), so M = 0 whenever F is a rotation
    elastic P = R M,  tau = P F^T          (R from the polar decomposition F = R S)
    plastic F' = F + alpha R M

so tau(Q F) = Q tau(F) Q^T and plastic(Q F) = Q plastic(F) exactly (up to round-off), tau(R) = 0 and
plastic(I) = I. The polar factor comes from `meshsim.kernels.polar_sigma`, whose gradient is finite at
repeated singular values.

Plain networks (the ablation): raw vec(F - I) input, biases, no rotation structure:
    elastic tau = sym(MLP(F - I)),  plastic F' = F + alpha MLP(F - I).
"""

from __future__ import annotations

import torch
from torch import nn

from meshsim.errors import ConfigError
from meshsim.kernels import polar_sigma


def _mlp(n_in: int, widths: list[int], n_out: int, bias: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Linear(n_in, w, bias=bias), nn.GELU()]
        n_in = w
    layers.append(nn.Linear(n_in, n_out, bias=bias))
    for m in layers:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return nn.Sequential(*layers)


def invariant_features(F: torch.Tensor):
    """Rotation R and the 13 invariant inputs [sigma - 1, vec(F^T F - I), det F - 1]."""
    R, sigma = polar_sigma(F)
    eye = torch.eye(3, dtype=F.dtype, device=F.device)
    ftf = (F.transpose(-1, -2) @ F - eye).reshape(-1, 9)
    det = torch.det(F)[:, None] - 1
    return R, torch.cat([sigma - 1, ftf, det], dim=-1)


def _sym(out: torch.Tensor) -> torch.Tensor:
    M = out.reshape(-1, 3, 3)
    return 0.5 * (M + M.transpose(-1, -2))


class NCLawElasticity(nn.Module):
    """Structured elasticity network: F [N,3,3] -> Kirchhoff stress tau [N,3,3]."""

    def __init__(self, widths=(64, 64), scale: float = 1.0):
        super().__init__()
        self.mlp = _mlp(13, list(widths), 9, bias=False)
        self.scale = scale  # output unit (Pa); lets the weights stay O(1)

    def stress(self, F):
        R, z = invariant_features(F)
        P = R @ _sym(self.mlp(z)) * self.scale
        return P @ F.transpose(-1, -2)

    def forward(self, F):
        return self.stress(F)


class NCLawPlasticity(nn.Module):
    """Structured plasticity network: trial F -> projected F = F + alpha R sym(M)."""

    def __init__(self, widths=(64, 64), alpha: float = 1e-3):
        super().__init__()
        self.mlp = _mlp(13, list(widths), 9, bias=False)
        self.alpha = alpha

    def project(self, F):
        R, z = invariant_features(F)
        return F + self.alpha * R @ _sym(self.mlp(z))

    def forward(self, F):
        return self.project(F)


class PlainElasticity(nn.Module):
    """Ablation: MLP with biases on raw F - I; symmetric output is tau (no rotation structure)."""

    def __init__(self, widths=(64, 64), scale: float = 1.0):
        super().__init__()
        self.mlp = _mlp(9, list(widths), 9, bias=True)
        self.scale = scale

    def stress(self, F):
        eye = torch.eye(3, dtype=F.dtype, device=F.device)
        return _sym(self.mlp((F - eye).reshape(-1, 9))) * self.scale

    def forward(self, F):
        return self.stress(F)


class PlainPlasticity(nn.Module):
    """Ablation: F + alpha MLP(F - I) with biases."""

    def __init__(self, widths=(64, 64), alpha: float = 1e-3):
        super().__init__()
        self.mlp = _mlp(9, list(widths), 9, bias=True)
        self.alpha = alpha

    def project(self, F):
        eye = torch.eye(3, dtype=F.dtype, device=F.device)
        return F + self.alpha * self.mlp((F - eye).reshape(-1, 9)).reshape(-1, 3, 3)

    def forward(self, F):
        return self.project(F)


class ConstitutiveModel(nn.Module):
    """An elasticity and a plasticity module used as one MPM material (stress + project)."""

    def __init__(self, elasticity: nn.Module, plasticity: nn.Module):
        super().__init__()
        self.elasticity = elasticity
        self.plasticity = plasticity

    def stress(self, F):
        return self.elasticity.stress(F)

    def project(self, F):
        return self.plasticity.project(F)


def build_model(kind: str = "nclaw", widths=(64, 64), stress_scale: float = 1.0, alpha: float = 1e-3):
    """'nclaw' (structured) or 'plain' (ablation) elasticity + plasticity pair."""
    if kind == "nclaw":
        return ConstitutiveModel(NCLawElasticity(widths, stress_scale), NCLawPlasticity(widths, alpha))
    if kind == "plain":
        return ConstitutiveModel(PlainElasticity(widths, stress_scale), PlainPlasticity(widths, alpha))
    raise ConfigError(f"unknown NCLaw model kind {kind!r}; use nclaw or plain")
