"""Validation during training: short autoregressive rollouts on held-out trajectories, HCMT's position RMSE."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from meshsim.errors import RolloutDivergedError
from meshsim.metrics import SCALE, rmse_per_step
from meshsim.models.rollout_loop import HISTORY, rollout


def load_validation_set(paths: list[str], count: int, steps: int) -> list[tuple[str, object]]:
    """The first `count` trajectories of `paths` (in file and id order), cut to HISTORY + `steps` frames."""
    from meshsim.datasets import TrajectoryFile

    chosen = []
    for path in paths:
        with TrajectoryFile(path) as f:
            for traj_id in f.ids:
                if len(chosen) == count:
                    return chosen
                if f.num_frames(traj_id) <= HISTORY:
                    continue
                traj = f.read(traj_id)
                frames = min(traj.num_frames, HISTORY + steps)
                chosen.append((f"{path}:{traj_id}", dataclasses.replace(
                    traj, world_pos=traj.world_pos[:frames],
                    fields={k: v[:frames] for k, v in traj.fields.items()},
                    globals={k: v[:frames] for k, v in traj.globals.items()})))
    return chosen


def validate(sim, trajectories: list[tuple[str, object]]) -> dict[str, float]:
    """Mean over trajectories of p1 and p_all (x1e3); a diverged rollout counts as inf (and is counted).

    Runs under its own RNG scope, so validating never changes what training draws next.
    """
    p1, p_all, diverged = [], [], 0
    with torch.random.fork_rng(devices=[]):
        for name, traj in trajectories:
            try:
                result = rollout(sim, traj, traj_id=name)
            except RolloutDivergedError:
                diverged += 1
                p1.append(np.inf)
                p_all.append(np.inf)
                continue
            rmse = rmse_per_step(result.pred_world_pos, traj.world_pos, HISTORY)
            p1.append(rmse[0] * SCALE)
            p_all.append(rmse.mean() * SCALE)
    return {"val_p1": float(np.mean(p1)), "val_p_all": float(np.mean(p_all)), "val_diverged": float(diverged)}
