"""Explicit MLS-MPM on a regular grid in Warp (quadratic B-splines, APIC transfer, walls and colliders),
differentiable through PyTorch. One concept per module, each using only those above it:

    config     MPMConfig, PlaneCollider, SphereCollider (plain data)
    stencil    B-spline base node, weights and weight derivatives (Warp functions)
    grid       boundary conditions and the grid update kernel
    transfer   P2G and G2P kernels
    adjoint    hand-written adjoints of P2G, the grid update and G2P
    solver     MPMSolver: buffers and launches of one step, forward and backward
    bridge     MPMState, DiffMPM: steps and rollouts as torch autograd Functions
    sampling   particles in boxes, spheres and closed meshes (numpy)

    sim = DiffMPM(MPMConfig(res=20), mass, vol)
    xs = sim.rollout(MPMState.at_rest(x0), material, steps=100, checkpoint=25)   # differentiable
"""

from .bridge import DiffMPM, MPMState
from .config import WALL_KINDS, MPMConfig, PlaneCollider, SphereCollider
from .sampling import load_mesh, sample_box, sample_mesh, sample_sphere
from .solver import MPMSolver

__all__ = [
    "WALL_KINDS", "DiffMPM", "MPMConfig", "MPMSolver", "MPMState", "PlaneCollider", "SphereCollider", "load_mesh",
    "sample_box", "sample_mesh", "sample_sphere",
]
