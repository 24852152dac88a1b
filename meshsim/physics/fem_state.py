"""What an explicit FEM step reads and writes besides the model: the state (`FemState`), what a caller drives
(`FemControl`), a substep's force accumulators (`FemForces`), and the frames a run returns (`FemResult`).
They hold Warp arrays on the model's device; `FemModel.state()`, `.control()`, `.forces()` make them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import warp as wp

from meshsim.physics.obstacles import quat_to_matrix


@dataclass
class FemState:
    """Nodes and rigid bodies at one instant: what a substep reads (s_in) and writes (s_out)."""

    x: wp.array  # [N] node positions
    v: wp.array  # [N] node velocities
    contact: wp.array  # [N] contact force on each node (obstacles), written by the substep
    body_pos: wp.array  # [B] obstacle positions
    body_rot: wp.array  # [B] obstacle orientations (quaternions)
    body_vel: wp.array  # [B] obstacle velocities
    body_omega: wp.array  # [B] obstacle angular velocities (3-vectors)


@dataclass
class FemControl:
    """What a caller drives per step: the per-element Lame parameters the element forces use (the model's by
    default; the bridge passes its own arrays to differentiate through them). Prescribed node velocities and
    external loads are part of the model; a kinematic obstacle's velocity is part of the state."""

    mu: wp.array  # [M]
    lam: wp.array  # [M]


@dataclass
class FemForces:
    """Accumulators of one substep, zeroed before it (a fresh one per substep under a wp.Tape). Not a list of
    contacts: obstacle contact is found and applied inside the node update, and only its reaction on the rigid
    bodies is accumulated here."""

    f: wp.array  # [N] internal + damping forces on the nodes, plus node-node contact
    body_force: wp.array  # [B] reaction of the nodes' contact on each rigid body
    body_torque: wp.array  # [B]
    between_bodies: wp.array  # [N] node-node contact between deformable bodies alone (reported, already in f)

    def zero(self) -> None:
        self.f.zero_()
        self.body_force.zero_()
        self.body_torque.zero_()
        self.between_bodies.zero_()


@dataclass
class FemResult:
    """Frames of a run. Positions of rigid-body mesh points (if any) are in `body_points`."""

    positions: np.ndarray          # [T, N, d]
    velocities: np.ndarray         # [T, N, d]
    stress: np.ndarray             # [T, N] nodal von Mises (Pa)
    contact_force: np.ndarray      # [T, N, d]
    energies: dict[str, np.ndarray]  # [T] kinetic, strain, contact, gravity, total
    body_position: np.ndarray      # [T, B, d]
    body_quaternion: np.ndarray    # [T, B, 4]
    body_velocity: np.ndarray      # [T, B, d]
    body_points: list = field(default_factory=list)  # per body with mesh_points: [T, P, d]
    dt: float = 0.0                # substep
    substeps: int = 0              # per frame


def collect_frames(frames: list[dict], obstacles: list, dim: int, h: float, substeps: int) -> FemResult:
    """Stack the per-frame diagnostics of a run (`FemSolver.diagnostics`) into a FemResult."""
    stack = lambda key: np.stack([f[key] for f in frames])  # noqa: E731
    bp, bq = stack("body_pos"), stack("body_rot")
    body_points = []
    for i, body in enumerate(obstacles):
        if body.mesh_points is None:
            continue
        local = np.asarray(body.mesh_points, float)
        pts = []
        for t in range(len(frames)):
            R = quat_to_matrix(bq[t, i])[:dim, :dim]
            pts.append(bp[t, i] + local @ R.T)
        body_points.append(np.stack(pts))
    return FemResult(
        positions=stack("x"), velocities=stack("v"), stress=stack("stress"),
        contact_force=stack("contact_force"),
        energies={k: np.array([f["energies"][k] for f in frames]) for k in frames[0]["energies"]},
        body_position=bp, body_quaternion=bq, body_velocity=stack("body_vel"), body_points=body_points,
        dt=h, substeps=substeps,
    )
