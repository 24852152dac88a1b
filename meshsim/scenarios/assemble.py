"""Run a scene's FEM model over its frames (`simulate_frames`) and turn the run plus the meshes of its rigid bodies
into one stored Trajectory (`assemble`).

Rigid bodies are part of the learned models' input (OBSTACLE nodes that move rigidly), so their meshes are
appended after the deformable nodes: cells offset, node types set, zero stress, positions from the body poses.
"""

from __future__ import annotations

import numpy as np

from meshsim.datasets.schema import NodeType


def simulate_frames(model, num_frames: int, duration: float):
    """(FemResult, frame_dt): `num_frames` frames evenly spaced over `duration` seconds, the first at t = 0."""
    from meshsim.physics.fem import FemSolver  # Warp loads only when a scene is simulated

    frame_dt = duration / (num_frames - 1)
    return FemSolver(model).simulate(num_frames, frame_dt), frame_dt


def assemble(result, cells, node_type, body_meshes, frame_dt: float, attrs: dict, body_node_type=NodeType.OBSTACLE):
    """`result`: FemResult; `body_meshes`: the meshes whose points were given as `mesh_points` (same order)."""
    from meshsim.datasets import Trajectory

    world = [result.positions]
    all_cells = [np.asarray(cells)]
    types = [np.asarray(node_type, np.int32)]
    offset = result.positions.shape[1]
    for mesh, points in zip(body_meshes, result.body_points):
        world.append(points)
        all_cells.append(np.asarray(mesh.cells) + offset)
        types.append(np.full(len(mesh.points), body_node_type, np.int32))
        offset += len(mesh.points)
    world_pos = np.concatenate(world, axis=1)
    stress = np.zeros(world_pos.shape[:2])
    stress[:, : result.positions.shape[1]] = result.stress
    n_fem = result.positions.shape[1]
    mesh_pos = world_pos[0].copy()
    mesh_pos[:n_fem] = result.positions[0]
    attrs = {**attrs, "solver_dt": float(result.dt), "substeps": int(result.substeps)}
    return Trajectory(
        cells=np.concatenate(all_cells).astype(np.int32),
        mesh_pos=mesh_pos.astype(np.float32),
        node_type=np.concatenate(types),
        world_pos=world_pos.astype(np.float32),
        dt=float(frame_dt),
        fields={"stress": stress.astype(np.float32)},
        globals={k: np.asarray(v, np.float64) for k, v in result.energies.items()},
        attrs=attrs,
    )
