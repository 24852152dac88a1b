"""A small analytic rollout file to try the viewer, the renderer and the exports without simulating anything.

A plate (triangles), a slab (tetrahedra) or a particle sheet, lying in the x-z plane (y is up, as in the
simulators), oscillates in its first bending mode y = A sin(pi x) sin(pi z) sin(omega t); the "prediction" adds an
error that grows with time, so the `error` colouring has something to show. Fields: `velocity` (the exact time
derivative, [T, N, 3]) and `height` (y, [T, N]). Used by the viewer's tests and benchmark; `meshsim view` works on
it like on any rollout.
"""

from __future__ import annotations

import math
import os

import numpy as np

from meshsim.datasets import Trajectory, TrajectoryWriter
from meshsim.errors import ConfigError

KINDS = ("triangle", "tetra", "particles")


def grid_triangles(nx: int, ny: int, lx: float = 1.0, ly: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Points [nx*ny, 2] of a regular grid and two triangles per square, counter-clockwise."""
    x, y = np.meshgrid(np.linspace(0, lx, nx), np.linspace(0, ly, ny), indexing="xy")
    points = np.stack([x.ravel(), y.ravel()], axis=1)
    i, j = np.meshgrid(np.arange(nx - 1), np.arange(ny - 1), indexing="xy")
    a = (j * nx + i).ravel()
    b, c, d = a + 1, a + nx + 1, a + nx
    return points, np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)]).astype(np.int32)


def grid_tetrahedra(nx: int, ny: int, nz: int, size=(1.0, 0.1, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """Points of a regular box grid and six positively oriented tetrahedra per cube (Kuhn subdivision)."""
    axes = [np.linspace(0, s, n) for s, n in zip(size, (nx, ny, nz))]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    i, j, k = (a.ravel() for a in np.meshgrid(np.arange(nx - 1), np.arange(ny - 1), np.arange(nz - 1), indexing="ij"))

    def node(di, dj, dk):
        return ((i + di) * ny + (j + dj)) * nz + (k + dk)

    tets = []
    for first, second in ((0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)):  # the 6 monotone paths 000 -> 111
        corner, path = [0, 0, 0], [node(0, 0, 0)]
        for axis in (first, second, 3 - first - second):
            corner[axis] = 1
            path.append(node(*corner))
        tets.append(np.stack(path, 1))
    tets = np.concatenate(tets).astype(np.int32)
    # Fix orientation so that every tetrahedron has positive volume.
    p = points[tets]
    volume = np.einsum("ij,ij->i", np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), p[:, 3] - p[:, 0])
    tets[volume < 0] = tets[volume < 0][:, [0, 2, 1, 3]]
    return points, tets


def sample_trajectory(kind: str = "triangle", nodes: int = 400, frames: int = 24, rollout: bool = True,
                      seed: int = 0) -> Trajectory:  # fmt: skip
    """About `nodes` nodes (the grid rounds it), `frames` frames, dt = 0.01 s."""
    if kind not in KINDS:
        raise ConfigError(f"sample kind {kind!r} unknown; use one of {', '.join(KINDS)}")
    if nodes < 8 or frames < 1:
        raise ConfigError(f"sample needs nodes >= 8 and frames >= 1, got nodes={nodes}, frames={frames}")
    if kind == "tetra":
        side = max(2, round((nodes / 3) ** 0.5))
        rest, cells = grid_tetrahedra(side, 3, side)
    else:
        side = max(2, round(nodes**0.5))
        flat, cells = grid_triangles(side, side)
        rest = np.stack([flat[:, 0], np.zeros(len(flat)), flat[:, 1]], axis=1)
        if kind == "particles":
            cells = np.arange(len(rest), dtype=np.int32)[:, None]
    dt, omega, amplitude = 0.01, 2 * math.pi / 0.2, 0.15
    time = np.arange(frames) * dt
    mode = np.sin(math.pi * rest[:, 0]) * np.sin(math.pi * rest[:, 2])
    world = np.repeat(rest[None], frames, axis=0)
    world[:, :, 1] += amplitude * np.sin(omega * time)[:, None] * mode[None]
    velocity = np.zeros_like(world)
    velocity[:, :, 1] = amplitude * omega * np.cos(omega * time)[:, None] * mode[None]
    node_type = np.zeros(len(rest), np.int32)
    node_type[np.isclose(rest[:, 0], 0.0)] = 3  # clamped edge: HANDLE
    fields = {"velocity": velocity.astype(np.float32), "height": world[:, :, 1].astype(np.float32)}
    pred, pred_fields = None, {}
    if rollout:
        # A smooth, seed-dependent error field, like a learned model's: low spatial frequency, growing in time.
        phase = np.random.default_rng(seed).uniform(0, 2 * math.pi, size=(3, 2))
        drift = 0.03 * np.stack(
            [np.sin(2 * math.pi * rest[:, 0] + p[0]) * np.cos(math.pi * rest[:, 2] + p[1]) for p in phase], axis=1
        )
        pred = world + (time / max(time[-1], dt))[:, None, None] * drift[None]
        pred_fields = {"height": pred[:, :, 1].astype(np.float32)}
    return Trajectory(
        cells=cells, mesh_pos=rest.astype(np.float32), node_type=node_type, world_pos=world.astype(np.float32),
        dt=dt, fields=fields, attrs={"scenario": f"sample_{kind}"},
        pred_world_pos=None if pred is None else pred.astype(np.float32), pred_fields=pred_fields,
    )  # fmt: skip


def write_sample(path: str | os.PathLike, kind: str = "triangle", nodes: int = 400, frames: int = 24,
                 rollout: bool = True, trajectories: int = 1) -> str:  # fmt: skip
    """Write a sample store (ids 00000, 00001, ...; each with another random prediction error); returns path."""
    with TrajectoryWriter(path, rollout=rollout, durable=False) as writer:
        for index in range(trajectories):
            traj_id = f"{index:05d}"
            if traj_id not in writer.ids:
                writer.write(traj_id, sample_trajectory(kind, nodes, frames, rollout, seed=index))
    return os.fspath(path)
