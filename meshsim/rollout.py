"""Autoregressive rollout of a learned simulator over ground-truth trajectories.

The rollout starts from the first two ground-truth frames (x_0, x_1) and feeds its own predictions back:
x_{t+1} = sim.step(static, x_{t-1}, x_t, hint=gt x_{t+1}). Nodes and components the model does not predict
(handles, kinematic obstacles, the fixed component of symmetric nodes) are taken from the hint, i.e. the ground
truth; contacts are recomputed inside sim.step from the predicted positions.

Divergence policy: a prediction with non-finite values, or one that leaves the ground-truth trajectory's bounding
box enlarged `DIVERGENCE_FACTOR` times its size, raises `RolloutDivergedError` naming the trajectory and the step.
Trajectories already written to the output file stay there (the file is always valid).

    from meshsim.rollout import rollout_file
    summary = rollout_file("runs/x/checkpoints/best.pt", "test.h5", "rollout.h5", traj_ids=["00000"], steps=50)
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from meshsim.errors import ConfigError, DataFormatError, OutputError, RolloutDivergedError

HISTORY = 2  # ground-truth frames handed to the rollout
DIVERGENCE_FACTOR = 10.0


@dataclass
class RolloutResult:
    pred_world_pos: np.ndarray  # [HISTORY + steps, N, d]; the first HISTORY frames are the ground truth
    pred_fields: dict[str, np.ndarray]  # [HISTORY + steps, N(, C)]; first frames copied from the ground truth
    step_seconds: np.ndarray  # [steps] wall time of each sim.step (device synchronised)


def numeric_attrs(attrs: dict) -> dict[str, torch.Tensor]:
    """Scalar numeric trajectory attributes (material parameters...) as FrameWindowDataset hands them to models."""
    out = {}
    for key, value in attrs.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, (bool, int, float)):
            out[key] = torch.tensor(float(value), dtype=torch.float32)
    return out


@torch.no_grad()
def rollout(sim, traj, steps: int | None = None, traj_id: str = "") -> RolloutResult:
    """Roll `sim` (a LearnedSimulator) out over `traj` (a meshsim.datasets.Trajectory) for `steps` steps."""
    total = traj.world_pos.shape[0]
    available = total - HISTORY
    steps = available if steps is None else steps
    if steps < 1 or steps > available:
        raise ConfigError(
            f"trajectory {traj_id or '?'} has {total} frames, so 1..{available} rollout steps; got steps={steps}"
        )
    device = next(sim.parameters()).device
    was_training = sim.training
    sim.eval()
    gt = torch.as_tensor(traj.world_pos[: HISTORY + steps], dtype=torch.float32, device=device)
    static = sim.prepare(
        traj.mesh_pos,  # host arrays: the static graph is built on the CPU, then moved to the device
        traj.cells,
        traj.node_type,
        numeric_attrs(traj.attrs),
    )
    lo, hi = _divergence_box(traj.world_pos)
    positions = [gt[0], gt[1]]
    field_frames: dict[str, list] = {}
    times = np.zeros(steps)
    try:
        for k in range(1, steps + 1):
            _sync(device)
            start = time.perf_counter()
            next_pos, fields = sim.step(static, positions[-2], positions[-1], gt[k + 1])
            _sync(device)
            times[k - 1] = time.perf_counter() - start
            _check(next_pos, lo, hi, traj_id, k)
            positions.append(next_pos)
            for name, value in (fields or {}).items():
                field_frames.setdefault(name, []).append(value.detach().float().cpu().numpy())
    finally:
        sim.train(was_training)
    pred_fields = {}
    for name, frames in field_frames.items():
        shape = (HISTORY, *frames[0].shape)
        head = traj.fields[name][:HISTORY].reshape(shape) if name in traj.fields else np.zeros(shape)
        pred_fields[name] = np.concatenate([head.astype(np.float32), np.stack(frames)], axis=0)
    pred = torch.stack(positions).cpu().numpy().astype(np.float32)
    return RolloutResult(pred, pred_fields, times)


def rollout_file(checkpoint: str | Path, data: str | Path, out: str | Path, traj_ids: list[str] | None = None,
                 steps: int | None = None, device: str = "auto", force: bool = False) -> dict:
    """Roll a checkpoint out over trajectories of `data` and write a rollout file (ground truth + prediction)."""
    from meshsim.datasets import TrajectoryFile, TrajectoryWriter
    from meshsim.train.checkpoint import load_model
    from meshsim.train.distributed import resolve_device

    out = Path(out)
    if Path(data).resolve() == out.resolve():
        raise OutputError(f"rollout output {out} is the input data file: choose another -o path")
    if not out.parent.is_dir():
        raise OutputError(f"folder {out.parent} does not exist: create it or choose another -o path")
    if out.exists() and not force:
        raise OutputError(f"{out} exists: pass --force to replace it or choose another -o path")
    sim, ckpt = load_model(checkpoint, resolve_device(device))
    written, seconds = [], []
    with TrajectoryFile(data) as source:
        ids = list(source.ids) if not traj_ids else list(traj_ids)
        unknown = [i for i in ids if i not in source.ids]
        if unknown:
            shown = ", ".join(list(source.ids)[:8])
            raise DataFormatError(f"{data} has no trajectory {unknown[0]!r}; it holds: {shown}")
        for traj_id in ids:  # a damaged input must not cost the user the file --force would replace
            source.read(traj_id)
        if out.exists():
            os.remove(out)
        with TrajectoryWriter(out, rollout=True) as writer:
            for traj_id in ids:
                traj = source.read(traj_id)
                result = rollout(sim, traj, steps, traj_id)
                writer.write(traj_id, rollout_trajectory(traj, result, str(checkpoint), int(ckpt["step"])))
                written.append(traj_id)
                seconds.append(result.step_seconds)
    all_seconds = np.concatenate(seconds)
    return {"output": str(out), "trajectories": written, "steps": int(len(seconds[0])),
            "mean_step_seconds": float(all_seconds.mean()), "checkpoint_step": int(ckpt["step"])}


def rollout_trajectory(traj, result: RolloutResult, checkpoint: str = "", checkpoint_step: int = 0):
    """The ground-truth trajectory cut to the rollout's length, with the prediction and timing attached."""
    frames = result.pred_world_pos.shape[0]
    attrs = dict(traj.attrs)
    attrs.update({
        "rollout_history_frames": HISTORY,
        "rollout_step_seconds": result.step_seconds.astype(np.float64),
        "rollout_mean_step_seconds": float(result.step_seconds.mean()),
        "rollout_checkpoint": checkpoint,
        "rollout_checkpoint_step": checkpoint_step,
    })
    return dataclasses.replace(
        traj,
        world_pos=traj.world_pos[:frames],
        fields={k: v[:frames] for k, v in traj.fields.items()},
        globals={k: v[:frames] for k, v in traj.globals.items()},
        attrs=attrs,
        pred_world_pos=result.pred_world_pos,
        pred_fields=result.pred_fields,
    )


def _divergence_box(world_pos: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    lo = world_pos.min(axis=(0, 1)).astype(np.float64)
    hi = world_pos.max(axis=(0, 1)).astype(np.float64)
    size = max(float((hi - lo).max()), 1e-6)
    margin = DIVERGENCE_FACTOR * size
    return torch.as_tensor(lo - margin), torch.as_tensor(hi + margin)


def _check(pos: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, traj_id: str, step: int) -> None:
    where = f"trajectory {traj_id} " if traj_id else ""
    if not bool(torch.isfinite(pos).all()):
        raise RolloutDivergedError(
            f"{where}rollout diverged at step {step} (frame {step + 1}): non-finite positions; "
            "train longer, with more noise, or roll out fewer steps"
        )
    p = pos.detach().double().cpu()
    if bool((p < lo).any() or (p > hi).any()):
        raise RolloutDivergedError(
            f"{where}rollout diverged at step {step} (frame {step + 1}): positions left the ground truth's "
            f"bounding box enlarged {DIVERGENCE_FACTOR:g}x; train longer, with more noise, or roll out fewer steps"
        )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
