"""`rollout_file`: roll a checkpoint out over the trajectories of a file and write a rollout file.

The loop itself (and its divergence policy) is `meshsim.models.rollout_loop`; its names are re-exported here, so
`from meshsim.rollout import rollout, rollout_batch, HISTORY` keeps working. Trajectories that diverge are left
out of the output file (the others are written, the file is always valid) and reported by one
`RolloutDivergedError` at the end.

    from meshsim.rollout import rollout_file
    summary = rollout_file("runs/x/checkpoints/best.pt", "test.h5", "rollout.h5", traj_ids=["00000"], steps=50)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from meshsim.errors import ConfigError, DataFormatError, OutputError, RolloutDivergedError
from meshsim.models.rollout_loop import (
    DIVERGENCE_FACTOR,
    HISTORY,
    RolloutResult,
    numeric_attrs,
    rollout,
    rollout_batch,
    rollout_trajectory,
)
from meshsim.threads import choose_threads, set_threads

__all__ = ["DIVERGENCE_FACTOR", "HISTORY", "RolloutResult", "numeric_attrs", "rollout", "rollout_batch",
           "rollout_file", "rollout_trajectory"]


def _chunks(ids: list[str], frames: dict[str, int], size: int) -> list[list[str]]:
    """Groups of at most `size` trajectories with the same number of frames, in the order given."""
    groups: dict[int, list[list[str]]] = {}
    order = []
    for traj_id in ids:
        chunks = groups.setdefault(frames[traj_id], [])
        if not chunks or len(chunks[-1]) == size:
            chunks.append([])
            order.append(chunks[-1])
        chunks[-1].append(traj_id)
    return order


def rollout_file(checkpoint: str | Path, data: str | Path, out: str | Path, traj_ids: list[str] | None = None,
                 steps: int | None = None, device: str = "auto", force: bool = False, threads: int = 0,
                 batch: int = 8) -> dict:
    """Roll a checkpoint out over trajectories of `data` and write a rollout file (ground truth + prediction).
    `threads`: torch CPU threads (0 = automatic, see meshsim.threads); `batch`: trajectories of equal length
    rolled out together as one batched graph. Diverged trajectories are left out of the file (the others are
    written) and reported by one RolloutDivergedError at the end."""
    from meshsim.datasets import TrajectoryFile, TrajectoryWriter
    from meshsim.progress import progress
    from meshsim.train.checkpoint import load_model
    from meshsim.train.distributed import resolve_device

    out = Path(out)
    if Path(data).resolve() == out.resolve():
        raise OutputError(f"rollout output {out} is the input data file: choose another -o path")
    if out.exists() and not force:
        raise OutputError(f"{out} exists: pass --force to replace it or choose another -o path")
    choose_threads(threads)  # validated before any work
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"--batch must be an integer >= 1 (trajectories rolled out together), got {batch!r}")
    sim, ckpt = load_model(checkpoint, resolve_device(device))
    written, seconds = [], []
    with TrajectoryFile(data) as source:
        ids = list(source.ids) if not traj_ids else list(traj_ids)
        unknown = [i for i in ids if i not in source.ids]
        if unknown:
            shown = ", ".join(list(source.ids)[:8])
            raise DataFormatError(f"{data} has no trajectory {unknown[0]!r}; it holds: {shown}")
        frames = {}
        for traj_id in ids:  # a damaged input must not cost the user the file --force would replace
            traj = source.read(traj_id)
            nodes, frames[traj_id] = traj.num_nodes, traj.num_frames
        if next(sim.parameters()).device.type == "cpu":
            set_threads(threads, nodes=nodes)
        if out.exists():
            os.remove(out)
        bar = progress(len(ids), desc=f"rollout -> {out.name}", unit="traj")
        failed = []
        with TrajectoryWriter(out, rollout=True) as writer:
            for chunk in _chunks(ids, frames, batch):
                trajs = [source.read(traj_id) for traj_id in chunk]
                for traj_id, traj, result in zip(chunk, trajs, rollout_batch(sim, trajs, steps, chunk)):
                    bar.update(1)
                    if isinstance(result, RolloutDivergedError):
                        failed.append(result)
                        continue
                    writer.write(traj_id, rollout_trajectory(traj, result, str(checkpoint), int(ckpt["step"])))
                    written.append(traj_id)
                    seconds.append(result.step_seconds)
        bar.close()
    if failed:
        raise RolloutDivergedError(f"{failed[0]} ({len(failed)} of {len(ids)} trajectories diverged; the "
                                   f"{len(written)} others are in {out})")
    all_seconds = np.concatenate(seconds)
    return {"output": str(out), "trajectories": written, "steps": int(len(seconds[0])),
            "mean_step_seconds": float(all_seconds.mean()), "checkpoint_step": int(ckpt["step"])}
