"""Differentiate FEM rollouts with PyTorch: a torch.autograd.Function around K explicit substeps.

    bridge = FemBridge(FemSolver(model), num_steps=50, dt=model.stable_dt)
    x, v = bridge(x0, v0, mu, lam, body_velocity)      # torch tensors in, torch tensors out
    loss = ((x - target) ** 2).sum(); loss.backward()  # grads on x0, v0, mu, lam, body_velocity

`mu`, `lam` are per-element Lame parameters (use `lame_torch(E, nu)` to differentiate with respect to Young's
modulus and Poisson ratio), `body_velocity` [B, d] the initial linear velocities of the rigid bodies (the motion
of a kinematic obstacle, or the launch velocity of a free one). Every substep writes new Warp arrays, so the
`wp.Tape` holds the whole rollout: memory grows linearly with K. Incoming gradients are copied into Warp-owned
buffers (Warp >= 1.13 zeroes the grads of written arrays during backward, which would clobber torch's).
"""

from __future__ import annotations

import torch
import warp as wp

from meshsim.physics.fem import FemSolver
from meshsim.physics.fem_state import FemControl


def lame_torch(youngs_modulus: torch.Tensor, poisson_ratio: torch.Tensor, plane_stress: bool = False):
    """Differentiable (mu, lam) from E and nu, the same formulas as `hyperelastic.lame`."""
    mu = youngs_modulus / (2 * (1 + poisson_ratio))
    lam = youngs_modulus * poisson_ratio / ((1 + poisson_ratio) * (1 - 2 * poisson_ratio))
    if plane_stress:
        lam = 2 * mu * lam / (lam + 2 * mu)
    return mu, lam


class _Rollout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, bridge, x0, v0, mu, lam, body_velocity):
        solver: FemSolver = bridge.solver
        model = solver.model
        k = model.k

        def to_wp(t, dtype):  # a Warp-owned copy with its own grad buffer
            return wp.array(t.detach().cpu().numpy().astype(model.np_dtype), dtype=dtype, device=model.device,
                            requires_grad=True)

        states = [model.state(requires_grad=True) for _ in range(bridge.num_steps + 1)]
        states[0].x = to_wp(x0, k.vec)
        states[0].v = to_wp(v0, k.vec)
        if len(model.obstacles):
            states[0].body_vel = to_wp(body_velocity, k.vec)
        mu_wp = to_wp(mu, model.scalar)
        lam_wp = to_wp(lam, model.scalar)
        control = FemControl(mu=mu_wp, lam=lam_wp)
        tape = wp.Tape()
        with tape:
            for i in range(bridge.num_steps):
                solver.step(states[i], states[i + 1], control, model.forces(requires_grad=True), bridge.dt)
        ctx.tape, ctx.states, ctx.params = tape, states, (mu_wp, lam_wp)
        ctx.torch_meta = (x0.dtype, x0.device)
        out = states[-1]
        return (torch.as_tensor(out.x.numpy().copy()).to(x0), torch.as_tensor(out.v.numpy().copy()).to(x0))

    @staticmethod
    def backward(ctx, grad_x, grad_v):
        dtype, device = ctx.torch_meta
        states = ctx.states
        out = states[-1]
        grads = {}
        for arr, g in ((out.x, grad_x), (out.v, grad_v)):
            if g is not None:
                grads[arr] = wp.array(g.detach().cpu().contiguous().numpy(), dtype=arr.dtype, device=arr.device)
        ctx.tape.backward(grads=grads)

        def to_torch(arr):
            return torch.as_tensor(arr.grad.numpy().copy(), dtype=dtype, device=device)

        mu_wp, lam_wp = ctx.params
        g_body = to_torch(states[0].body_vel) if states[0].body_vel.grad is not None else None
        result = (None, to_torch(states[0].x), to_torch(states[0].v), to_torch(mu_wp), to_torch(lam_wp), g_body)
        ctx.tape.reset()
        ctx.tape = ctx.states = ctx.params = None
        return result


class FemBridge:
    """Callable: (x0, v0, mu, lam, body_velocity=None) -> (x_K, v_K) after `num_steps` substeps of `dt`."""

    def __init__(self, solver: FemSolver, num_steps: int, dt: float | None = None):
        if num_steps < 1:
            raise ValueError("num_steps must be >= 1")
        self.solver = solver
        self.num_steps = int(num_steps)
        self.dt = float(dt if dt is not None else solver.model.stable_dt)
        solver.substeps_for(self.dt, self.dt)  # refuses a dt beyond the CFL limit

    def __call__(self, x0, v0, mu, lam, body_velocity=None):
        model = self.solver.model
        if body_velocity is None:
            body_velocity = torch.zeros((len(model.obstacles), model.dim), dtype=x0.dtype, device=x0.device)
        return _Rollout.apply(self, x0, v0, mu, lam, body_velocity)
