"""Differentiable MPM for PyTorch: one autograd.Function per step around the Warp solver.

    sim = DiffMPM(MPMConfig(res=20), mass, vol)
    state = MPMState.at_rest(x0, v0)
    xs = sim.rollout(state, material, steps=100, checkpoint=25)   # [steps, N, 3], differentiable

`material` is anything with `stress(F) -> tau` and `project(F) -> F` (analytic laws or networks). Forward
copies the torch inputs into the solver's preallocated Warp buffers and returns copies of its outputs;
backward copies the saved inputs back, recomputes the grid and runs the adjoint kernels into Warp-owned grad
buffers (Warp >= 1.13 zeroes the grads of written arrays, so torch's grad_output is never handed to Warp).
With `checkpoint=K` each K-step segment (material included) is recomputed in backward
(torch.utils.checkpoint), so the autograd graph holds one state per segment instead of every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import warp as wp
from torch.utils.checkpoint import checkpoint as torch_checkpoint

from meshsim.errors import SimulationError

from .config import MPMConfig
from .solver import MPMSolver


@dataclass
class MPMState:
    x: torch.Tensor  # [N, 3] positions
    v: torch.Tensor  # [N, 3] velocities
    C: torch.Tensor  # [N, 3, 3] APIC affine velocity
    F: torch.Tensor  # [N, 3, 3] deformation gradient

    @staticmethod
    def at_rest(x, v=None) -> MPMState:
        x = torch.as_tensor(x, dtype=torch.float32)
        n = len(x)
        v = torch.zeros(n, 3) if v is None else torch.as_tensor(v, dtype=torch.float32)
        return MPMState(x, v, torch.zeros(n, 3, 3), torch.eye(3).repeat(n, 1, 1))

    def tuple(self):
        return self.x, self.v, self.C, self.F

    def detach(self) -> MPMState:
        return MPMState(*(t.detach() for t in self.tuple()))


def _view(arr):
    return wp.to_torch(arr, requires_grad=False)


class _Step(torch.autograd.Function):
    @staticmethod
    def forward(ctx, sim, x, v, C, F, tau):
        sim._load(x, v, C, F, tau)
        sim.solver.step()
        ctx.sim = sim
        out = tuple(t.clone() for t in sim._outputs())
        ctx.save_for_backward(x, v, C, F, tau, out[1], out[2])
        return out

    @staticmethod
    def backward(ctx, gx, gv, gC, gF):
        sim = ctx.sim
        x, v, C, F, tau, v1, C1 = ctx.saved_tensors
        sim._load(x, v, C, F, tau)
        sim._out[1].copy_(v1)  # the hand-written G2P adjoint reads this step's gathered v and C
        sim._out[2].copy_(C1)
        for dst, g in zip(sim._output_grads(), (gx, gv, gC, gF)):
            if g is None:
                dst.zero_()
            else:
                dst.copy_(g)
        sim.solver.backward()
        return (None, *(t.clone() for t in sim._input_grads()))


class DiffMPM:
    """A Warp MPM solver with torch-facing, differentiable steps and rollouts."""

    def __init__(self, cfg: MPMConfig, mass, vol, device: str = "cpu", threads: int | None = None):
        self.cfg = cfg
        self.solver = MPMSolver(cfg, np.asarray(mass), np.asarray(vol), device=device, threads=threads)
        s = self.solver
        self._in = [_view(a) for a in (s.x, s.v, s.C, s.F, s.tau)]
        self._out = [_view(a) for a in (s.x1, s.v1, s.C1, s.F1)]
        self._in_grad = [_view(a.grad) for a in (s.x, s.v, s.C, s.F, s.tau)]
        self._out_grad = [_view(a.grad) for a in (s.x1, s.v1, s.C1, s.F1)]

    @property
    def num_particles(self) -> int:
        return self.solver.num_particles

    def _load(self, *tensors):
        for dst, src in zip(self._in, tensors):
            dst.copy_(src.reshape(dst.shape))

    def _outputs(self):
        return self._out

    def _output_grads(self):
        return self._out_grad

    def _input_grads(self):
        return self._in_grad

    def step(self, x, v, C, F, tau):
        """One MPM step (differentiable in every input): returns x, v, C, F."""
        return _Step.apply(self, x, v, C, F, tau)

    def advance(self, state: MPMState, material) -> MPMState:
        """tau = material.stress(F); MPM step; F = material.project(F)."""
        tau = material.stress(state.F)
        x, v, C, F = self.step(state.x, state.v, state.C, state.F, tau)
        return MPMState(x, v, C, material.project(F))

    def _segment(self, material, steps):
        def run(x, v, C, F):
            state = MPMState(x, v, C, F)
            xs = []
            for _ in range(steps):
                state = self.advance(state, material)
                xs.append(state.x)
            return (torch.stack(xs), *state.tuple())

        return run

    def rollout(self, state: MPMState, material, steps: int, checkpoint: int = 0, check_finite: bool = False):
        """Positions [steps, N, 3] after each step, and the final state.

        checkpoint > 0 recomputes each segment of that many steps in backward (memory ~ steps/checkpoint).
        check_finite raises SimulationError naming the step (segment end) once v or F stop being finite
        (positions are clamped to the box, so they stay finite even when the material blows up).
        """
        xs = []
        t = 0
        while t < steps:
            k = min(checkpoint if checkpoint > 0 else steps, steps - t)
            run = self._segment(material, k)
            if checkpoint > 0 and torch.is_grad_enabled():
                seg, *rest = torch_checkpoint(run, *state.tuple(), use_reentrant=False)
            else:
                seg, *rest = run(*state.tuple())
            state = MPMState(*rest)
            xs.append(seg)
            t += k
            if check_finite and not (torch.isfinite(state.v).all() and torch.isfinite(state.F).all()):
                raise SimulationError(f"MPM state is not finite after step {t}: the material blew up (lower dt, "
                                      "or check the material law)")
        return torch.cat(xs), state
