"""Design studies: learned rollouts across a parameter sweep, checked against the solver on a few points.

    from meshsim.study import run_study
    report = run_study("runs/demo/hcmt/checkpoints/best.pt", "impact-plate-2d",
                       sweep=("ball_speed", [4.0, 8.0, 12.0]), verify=1, out="runs/study")

For each value of the swept scenario parameter the scene is set up with the same seed (so every other sampled
parameter stays the same), the solver provides only the first two frames, and the learned simulator rolls the
rest out. Quantities of interest per point:

- `peak_von_mises`: the largest predicted nodal von Mises stress over the rollout (Pa), when the model predicts
  "stress";
- `peak_displacement`: the largest distance of a deformable node from its first position (m);
- `contact_duration`: the time during which some obstacle node lies within `contact_gap` of a deformable node
  (s), where `contact_gap` is 0.75 x the median mesh edge length of the deformable body; None without obstacle
  nodes.

`verify=K` runs the full solver on K points spread over the sweep and reports its quantities of interest and
the learned rollout's position RMSE next to the learned ones. Outputs: `study.csv`, `study.png`, `study.json`
and `study.h5` (the learned rollouts, viewable with `meshsim view`).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from meshsim.datasets.schema import NodeType
from meshsim.errors import ConfigError

QUANTITIES = ("peak_von_mises", "peak_displacement", "contact_duration")
UNITS = {"peak_von_mises": "Pa", "peak_displacement": "m", "contact_duration": "s"}


def parse_sweep(text: str) -> tuple[str, list[float]]:
    """`"ball_speed=4,8,12"` -> ("ball_speed", [4.0, 8.0, 12.0])."""
    name, sep, values = text.partition("=")
    try:
        numbers = [float(v) for v in values.split(",") if v.strip()]
    except ValueError:
        numbers = []
    if not sep or not name or not numbers or not all(math.isfinite(v) for v in numbers):
        raise ConfigError(f"--sweep {text!r} must look like NAME=v1,v2,... with numbers, e.g. ball_speed=4,8,12")
    return name.strip(), numbers


def run_study(checkpoint: str | os.PathLike, scene: str, sweep: tuple[str, list[float]], verify: int = 0,
              out: str | os.PathLike = "runs/study", overrides: tuple[str, ...] = (), seed: int = 0,
              device: str = "cpu") -> dict:
    """Run the study and write its outputs into `out`; returns the report (also `study.json`)."""
    from meshsim.demo import prepare_output_folder
    from meshsim.scenarios import get_scenario
    from meshsim.train.checkpoint import load_model

    name, values = sweep
    scenario = get_scenario(scene)
    base = scenario.make_config(list(overrides))
    point_overrides = [list(overrides) + [_override(base, name, v)] for v in values]
    configs = [scenario.make_config(o) for o in point_overrides]  # every point validated before any work
    if not 0 <= verify <= len(values):
        raise ConfigError(f"--verify must be between 0 and the number of sweep values ({len(values)}), got {verify}")
    out = Path(out)
    prepare_output_folder(out)

    sim, _ = load_model(checkpoint, device)
    sim.eval()
    verified = set(np.linspace(0, len(values) - 1, verify).round().astype(int).tolist()) if verify else set()
    rows, rollouts = [], {}
    for index, (value, cfg) in enumerate(zip(values, configs)):
        start = _first_frames(scenario, cfg, seed)
        t0 = time.perf_counter()
        pred, stress = _learned_rollout(sim, start, _num_frames(cfg))
        row = {name: value, "learned_seconds": time.perf_counter() - t0,
               **_quantities(start, pred, stress, start.dt, prefix="learned_")}
        if index in verified:
            t0 = time.perf_counter()
            truth = scenario.simulate(cfg, seed)
            row["solver_seconds"] = time.perf_counter() - t0
            gt_stress = truth.fields.get("stress")
            row.update(_quantities(truth, truth.world_pos, gt_stress, truth.dt, prefix="solver_"))
            frames = min(len(pred), len(truth.world_pos))
            err = np.sqrt(((pred[:frames] - truth.world_pos[:frames]) ** 2).sum(-1).mean(-1))[2:]
            row["position_rmse_all_x1e3"] = float(err.mean() * 1e3)
        rows.append(row)
        rollouts[f"point_{index:03d}"] = _as_trajectory(start, pred, stress, {name: value, "sweep": name})

    report = {"checkpoint": str(checkpoint), "scene": scene, "sweep": name, "values": values, "seed": seed,
              "verified": sorted(verified), "points": rows}
    _write_outputs(out, report, rollouts)
    return report


def _override(cfg, name: str, value: float) -> str:
    """Fix `name` at `value`: sampled ranges (lo, hi) become (value, value)."""
    if not hasattr(cfg, name):
        fields = ", ".join(f.name for f in dataclasses.fields(cfg))
        raise ConfigError(f"--sweep: the scene has no parameter {name!r}; choose one of: {fields}")
    current = getattr(cfg, name)
    if isinstance(current, tuple) and len(current) == 2:
        return f"{name}=[{value!r}, {value!r}]"
    return f"{name}={value!r}"


def _num_frames(cfg) -> int:
    if not hasattr(cfg, "num_frames"):
        raise ConfigError(f"scene config {type(cfg).__name__} has no num_frames: it cannot be studied")
    return int(cfg.num_frames)


def _first_frames(scenario, cfg, seed: int):
    """The solver's first two frames at the scene's frame spacing (the learned model's history)."""
    if not hasattr(cfg, "duration"):
        raise ConfigError(f"scene config {type(cfg).__name__} has no duration: it cannot be studied")
    frame_dt = cfg.duration / (cfg.num_frames - 1)
    short = dataclasses.replace(cfg, num_frames=2, duration=frame_dt)
    return scenario.simulate(short, seed)


def _learned_rollout(sim, start, num_frames: int):
    import torch

    from meshsim.rollout import numeric_attrs

    device = next(sim.parameters()).device
    node_type = torch.as_tensor(start.node_type, dtype=torch.long, device=device)
    moving = np.abs(start.world_pos[1] - start.world_pos[0]) > 0  # per component: SYMMETRIC nodes slide in y
    held = ~sim.output_mask(node_type).cpu().numpy()
    if (moving & held).any():
        raise ConfigError("the scene moves nodes that the model does not predict (prescribed motion); a study needs "
                          "the solver for those: use `meshsim rollout` on generated trajectories instead")
    static = sim.prepare(start.mesh_pos, start.cells, start.node_type,  # host arrays: graph built on the CPU
                         numeric_attrs(start.attrs))
    positions = [torch.as_tensor(p, dtype=torch.float32, device=device) for p in start.world_pos[:2]]
    stress = [start.fields["stress"][0], start.fields["stress"][1]] if "stress" in start.fields else None
    with torch.no_grad():
        for _ in range(num_frames - 2):
            next_pos, fields = sim.step(static, positions[-2], positions[-1])
            if not torch.isfinite(next_pos).all():
                break  # diverged: the quantities of interest cover the finite part, the CSV says how many frames
            positions.append(next_pos)
            if stress is not None and "stress" in fields:
                stress.append(fields["stress"].cpu().numpy())
    pred = torch.stack(positions).cpu().numpy().astype(np.float32)
    has_stress = stress is not None and len(stress) == len(pred)
    return pred, (np.stack(stress).astype(np.float32) if has_stress else None)


def _quantities(traj, world_pos: np.ndarray, stress, dt: float, prefix: str) -> dict:
    from meshsim.mesh import edges_from_cells

    node_type = np.asarray(traj.node_type)
    obstacle = node_type == NodeType.OBSTACLE
    body = ~obstacle
    disp = np.linalg.norm(world_pos[:, body] - world_pos[:1, body], axis=-1)
    out = {f"{prefix}frames": int(len(world_pos)), f"{prefix}peak_displacement": float(disp.max())}
    out[f"{prefix}peak_von_mises"] = None if stress is None else float(np.max(stress[:, body]))
    if obstacle.any():
        senders, receivers = edges_from_cells(np.asarray(traj.cells))
        inside = body[senders] & body[receivers]
        lengths = np.linalg.norm(traj.mesh_pos[senders[inside]] - traj.mesh_pos[receivers[inside]], axis=-1)
        gap = 0.75 * float(np.median(lengths))
        from scipy.spatial import cKDTree

        touching = [cKDTree(frame[body]).query(frame[obstacle], distance_upper_bound=gap)[0].min() < gap
                    for frame in world_pos]
        out[f"{prefix}contact_duration"] = float(np.sum(touching) * dt)
    else:
        out[f"{prefix}contact_duration"] = None
    return out


def _as_trajectory(start, pred: np.ndarray, stress, attrs: dict):
    from meshsim.datasets import Trajectory

    fields = {"stress": stress} if stress is not None else {}
    return Trajectory(cells=start.cells, mesh_pos=start.mesh_pos, node_type=start.node_type, world_pos=pred,
                      dt=start.dt, fields=fields, attrs={**start.attrs, **attrs, "source": "learned"})


def _write_outputs(out: Path, report: dict, rollouts: dict) -> None:
    from meshsim.datasets import TrajectoryWriter

    columns = list(dict.fromkeys(k for row in report["points"] for k in row))
    tmp = out / ".study.csv.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(report["points"])
    os.replace(tmp, out / "study.csv")
    (out / ".study.json.tmp").write_text(json.dumps(report, indent=1))
    os.replace(out / ".study.json.tmp", out / "study.json")
    _plot(report, out / "study.png")
    h5 = out / "study.h5"
    if h5.exists():
        h5.unlink()  # the previous study's rollouts: this run replaces them as a whole
    with TrajectoryWriter(h5) as w:
        for traj_id, traj in rollouts.items():
            w.write(traj_id, traj)


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name, points = report["sweep"], report["points"]
    shown = [q for q in QUANTITIES if any(p.get(f"learned_{q}") is not None for p in points)]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.4), squeeze=False)
    x = [p[name] for p in points]
    for ax, q in zip(axes[0], shown):
        ax.plot(x, [p.get(f"learned_{q}") for p in points], "o-", label="learned")
        checked = [p for p in points if p.get(f"solver_{q}") is not None]
        if checked:
            ax.plot([p[name] for p in checked], [p[f"solver_{q}"] for p in checked], "s", ms=9, mfc="none",
                    label="solver")
        ax.set_xlabel(name)
        ax.set_title(f"{q.replace('_', ' ')} ({UNITS[q]})")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{report['scene']}: sweep of {name}")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def format_report(report: dict) -> str:
    """One row per sweep point: learned quantities, and the solver's where it was run."""
    name = report["sweep"]

    def cell(value, scale=1.0):
        return "-" if value is None else f"{value * scale:.4g}"

    lines = [f"{name:>14} {'peak vM (MPa)':>14} {'peak disp (mm)':>15} {'contact (ms)':>13} {'RMSE x1e-3':>11}"]
    for p in report["points"]:
        lines.append(f"{p[name]:>14.4g} {cell(p.get('learned_peak_von_mises'), 1e-6):>14} "
                     f"{cell(p.get('learned_peak_displacement'), 1e3):>15} "
                     f"{cell(p.get('learned_contact_duration'), 1e3):>13} {cell(p.get('position_rmse_all_x1e3')):>11}")
        if "solver_frames" in p:
            lines.append(f"{'  solver':>14} {cell(p.get('solver_peak_von_mises'), 1e-6):>14} "
                         f"{cell(p.get('solver_peak_displacement'), 1e3):>15} "
                         f"{cell(p.get('solver_contact_duration'), 1e3):>13} {'':>11}")
    return "\n".join(lines)
