"""The one autoregressive rollout loop of a learned simulator, with its divergence policy (no file I/O).

The rollout starts from the first two ground-truth frames (x_0, x_1) and feeds its own predictions back:
x_{t+1} = sim.step(static, x_{t-1}, x_t, hint=gt x_{t+1}). Nodes and components the model does not predict
(handles, kinematic obstacles, the fixed component of symmetric nodes) are taken from the hint, i.e. the ground
truth; contacts are recomputed inside sim.step from the predicted positions.

Divergence policy: a prediction with non-finite values, or one that leaves the ground-truth trajectory's bounding
box enlarged `DIVERGENCE_FACTOR` times its size, is a `RolloutDivergedError` naming the trajectory and the step:
`rollout` raises it; `rollout_batch` freezes that trajectory at its last finite frame, returns the error in its
place and goes on with the others.

Used by `meshsim.rollout.rollout_file` (the rollout file), `meshsim.study`, training validation
(`meshsim.train.validation`), shipped-model checks and the benchmarks.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch

from meshsim.errors import ConfigError, DataFormatError, RolloutDivergedError

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
    result = rollout_batch(sim, [traj], steps, [traj_id])[0]
    if isinstance(result, RolloutDivergedError):
        raise result
    return result


@torch.no_grad()
def rollout_batch(sim, trajs: list, steps: int | None = None,
                  traj_ids: list[str] | None = None) -> list[RolloutResult | RolloutDivergedError]:
    """Roll several trajectories out at once as one batched graph (the same answers as one at a time, to float
    rounding: the graphs share no edge). A trajectory that diverges is frozen at its last finite frame and
    returned as its RolloutDivergedError; the others go on. `step_seconds` is each batched step's wall time
    divided by the number of trajectories (the cost per trajectory)."""
    from torch_geometric.data import Batch

    traj_ids = list(traj_ids or [str(i) for i in range(len(trajs))])
    total = min(t.world_pos.shape[0] for t in trajs)
    available = total - HISTORY
    steps = available if steps is None else steps
    if steps < 1 or steps > available:
        which = traj_ids[[t.world_pos.shape[0] for t in trajs].index(total)] or "?"
        raise ConfigError(f"trajectory {which} has {total} frames, so 1..{available} rollout steps; got steps={steps}")
    device = next(sim.parameters()).device
    was_training = sim.training
    sim.eval()
    # each static graph is built on the CPU (GraphBuilder), batched there, then moved to the device once
    statics = [sim.builder.prepare(t.mesh_pos, t.cells, t.node_type, numeric_attrs(t.attrs)) for t in trajs]
    graph = _batch_statics(statics, Batch).to(device)
    sizes = [s.num_nodes for s in statics]
    gt = torch.cat([torch.as_tensor(t.world_pos[: HISTORY + steps], dtype=torch.float32) for t in trajs],
                   dim=1).to(device)
    boxes = [_divergence_box(t.world_pos) for t in trajs]
    errors: list[RolloutDivergedError | None] = [None] * len(trajs)
    positions = [gt[0], gt[1]]
    carried = _start_fields(sim.cfg, trajs, traj_ids).to(device) if sim.cfg.field_input else None
    field_frames: dict[str, list] = {}
    times = np.zeros(steps)
    try:
        for k in range(1, steps + 1):
            _sync(device)
            start = time.perf_counter()
            next_pos, fields = sim.step(graph, positions[-2], positions[-1], gt[k + 1], fields=carried)
            _sync(device)
            times[k - 1] = (time.perf_counter() - start) / len(trajs)
            parts = list(next_pos.split(sizes))
            for i, part in enumerate(parts):
                if errors[i] is None:
                    errors[i] = _divergence(part, *boxes[i], traj_ids[i], k)
                if errors[i] is not None:  # frozen: the others must not see its non-finite values
                    parts[i] = positions[-1].split(sizes)[i]
            positions.append(torch.cat(parts))
            for name, value in (fields or {}).items():
                field_frames.setdefault(name, []).append(value.detach().float().cpu().numpy())
            if carried is not None:  # the model's own fields feed its next step, as its positions do
                carried = sim.field_state(fields)
    finally:
        sim.train(was_training)
    pred = torch.stack(positions).cpu().numpy().astype(np.float32)
    offsets = np.cumsum([0, *sizes])
    results: list[RolloutResult | RolloutDivergedError] = []
    for i, traj in enumerate(trajs):
        if errors[i] is not None:
            results.append(errors[i])
            continue
        nodes = slice(offsets[i], offsets[i + 1])
        pred_fields = {}
        for name, frames in field_frames.items():
            mine = np.stack([f[nodes] for f in frames])
            shape = (HISTORY, *mine.shape[1:])
            head = traj.fields[name][:HISTORY].reshape(shape) if name in traj.fields else np.zeros(shape)
            pred_fields[name] = np.concatenate([head.astype(np.float32), mine], axis=0)
        results.append(RolloutResult(pred[:, nodes], pred_fields, times.copy()))
    return results


def _start_fields(cfg, trajs: list, traj_ids: list[str]) -> torch.Tensor:
    """[sum N, F]: the ground-truth fields at the last history frame, for a model that carries its fields."""
    columns = []
    for name in cfg.fields:
        parts = []
        for traj, traj_id in zip(trajs, traj_ids):
            if name not in traj.fields:
                raise DataFormatError(f"trajectory {traj_id or '?'} has no field {name!r}, which this model carries "
                                      "from step to step (model.field_input): use data that stores it")
            parts.append(torch.as_tensor(np.asarray(traj.fields[name][HISTORY - 1], np.float32).reshape(-1)))
        columns.append(torch.cat(parts))
    return torch.stack(columns, dim=-1)


def _batch_statics(statics: list, batch_cls):
    """One batched graph from per-mesh static graphs; rigid body ids made unique across the meshes."""
    groups = [getattr(s, "rigid_group", None) for s in statics]
    for s in statics:
        if "batch" in s:
            del s.batch  # prepare()'s single-graph batch vector; Batch builds the real one
    graph = batch_cls.from_data_list(statics)
    if groups[0] is not None:
        shifted, offset = [], 0
        for g in groups:
            shifted.append(torch.where(g >= 0, g + offset, g))
            offset += int(g.max()) + 1 if g.numel() and int(g.max()) >= 0 else 0
        graph.rigid_group = torch.cat(shifted)
    return graph


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


def _divergence(pos: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, traj_id: str,
                step: int) -> RolloutDivergedError | None:
    """The divergence error of a predicted frame (non-finite, or outside the enlarged box), or None."""
    where = f"trajectory {traj_id} " if traj_id else ""
    if not bool(torch.isfinite(pos).all()):
        return RolloutDivergedError(
            f"{where}rollout diverged at step {step} (frame {step + 1}): non-finite positions; "
            "train longer, with more noise, or roll out fewer steps"
        )
    p = pos.detach().double().cpu()
    if bool((p < lo).any() or (p > hi).any()):
        return RolloutDivergedError(
            f"{where}rollout diverged at step {step} (frame {step + 1}): positions left the ground truth's "
            f"bounding box enlarged {DIVERGENCE_FACTOR:g}x; train longer, with more noise, or roll out fewer steps"
        )
    return None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
