"""FemBridge gradients against central finite differences in float64, through contact and friction."""

import numpy as np
import pytest
import torch

from meshsim.mesh import rectangle
from meshsim.physics.bridge import FemBridge, lame_torch
from meshsim.physics.fem import FemSolver
from meshsim.physics.fem_model import FemModel
from meshsim.physics.obstacles import RigidBody


def _setup(free_ball: bool, device: str = "cpu"):
    mesh = rectangle((1.0, 0.2), (6, 2))
    fixed = np.isclose(mesh.points[:, 0], 0.0)
    ball = RigidBody("sphere", (0.7, 0.35), radius=0.2, velocity=(0.0, -0.3), stiffness=6e3, friction=0.3,
                     damping=0.1, mass=0.5 if free_ball else None)
    model = FemModel.build(mesh.points, mesh.cells, density=1000.0, youngs_modulus=1e4, poisson_ratio=0.3,
                           material="neohookean", fixed=fixed, obstacles=[ball], gravity=(0.0, -9.81),
                           stiffness_damping=1e-3, dtype="float64", device=device)
    solver = FemSolver(model)
    return solver, mesh


@pytest.mark.parametrize("free_ball", [False, True])
def test_gradients_match_central_differences(free_ball, device):
    solver, mesh = _setup(free_ball, device)
    bridge = FemBridge(solver, num_steps=30)
    gen = torch.Generator().manual_seed(0)
    f64 = torch.float64
    x0 = torch.tensor(mesh.points, dtype=f64, device=device, requires_grad=True)
    v0 = (0.1 * torch.randn(x0.shape, generator=gen, dtype=f64)).to(device).requires_grad_()
    youngs = torch.full((len(mesh.cells),), 1e4, dtype=f64, device=device, requires_grad=True)
    nu = torch.full((len(mesh.cells),), 0.3, dtype=f64, device=device)
    ball_v = torch.tensor([[0.0, -0.3]], dtype=f64, device=device, requires_grad=True)
    wx = torch.randn(x0.shape, generator=gen, dtype=f64).to(device)
    wv = torch.randn(x0.shape, generator=gen, dtype=f64).to(device)

    def loss_fn(x0, v0, youngs, ball_v):
        mu, lam = lame_torch(youngs, nu)
        x, v = bridge(x0, v0, mu, lam, ball_v)
        return (x * wx).sum() + 0.01 * (v * wv).sum()

    loss = loss_fn(x0, v0, youngs, ball_v)
    loss.backward()
    inputs = {"x0": x0, "v0": v0, "youngs": youngs, "ball_v": ball_v}
    steps = {"x0": 1e-6, "v0": 1e-6, "youngs": 1e-2, "ball_v": 1e-6}
    touched = 0
    for name, tensor in inputs.items():
        flat_grad = tensor.grad.reshape(-1)
        for idx in sorted({0, 7, tensor.numel() - 1} & set(range(tensor.numel()))):
            with torch.no_grad():
                args = {k: t.detach() for k, t in inputs.items()}
                plus, minus = tensor.detach().clone(), tensor.detach().clone()
                plus.view(-1)[idx] += steps[name]
                minus.view(-1)[idx] -= steps[name]
                fd = (loss_fn(**{**args, name: plus}) - loss_fn(**{**args, name: minus})) / (2 * steps[name])
            assert float(flat_grad[idx]) == pytest.approx(float(fd), rel=1e-4, abs=1e-9 * max(1.0, abs(float(fd))))
            touched += abs(float(fd)) > 0
    assert touched >= 8  # most checked entries have a real, non-zero gradient
    clamped = torch.as_tensor(np.isclose(mesh.points[:, 0], 0.0), device=device)
    assert torch.isfinite(x0.grad).all() and (x0.grad[clamped] != 0).any()


def test_contact_really_happens_in_the_gradient_test():
    solver, mesh = _setup(False)
    res = solver.simulate(31, solver.model.stable_dt)  # the same 30 substeps as the bridge
    in_contact = np.abs(res.contact_force).sum(axis=(1, 2)) > 0
    assert in_contact.sum() >= 3


def test_bridge_refuses_a_step_beyond_the_cfl_limit():
    from meshsim.errors import SimulationError

    solver, _ = _setup(False)
    with pytest.raises(SimulationError, match="CFL"):
        FemBridge(solver, num_steps=3, dt=10 * solver.model.stable_dt)
