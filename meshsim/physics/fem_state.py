"""The state of an explicit FEM run (`FemState`), a substep's force accumulators (`FemScratch`) and the frames a
run returns (`FemResult`). States hold Warp arrays on the solver's device; `FemSolver.state()` makes one.
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
class FemScratch:
    """Accumulators of one substep, zeroed before it (a fresh one per substep under a wp.Tape)."""

    f: wp.array  # [N] internal + damping forces
    body_force: wp.array  # [B] contact force on each obstacle
    body_torque: wp.array  # [B]
    body_contact: wp.array  # [N] contact force of obstacles on each node


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
