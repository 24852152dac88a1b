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

All three come from the predicted frames only (the two solver frames the rollout starts from are inputs, not
answers); the solver's are taken over the same frames.

`verify=K` runs the full solver on K points spread over the sweep and reports, next to the learned answers, the
solver's, their relative difference (`reldiff_<quantity>`), the learned rollout's position RMSE and that of
holding every node still (`hold_rmse_all_x1e3`, `skill` = 1 - RMSE / hold). A learned answer that differs from
the solver's by more than `tolerance` is listed in `report["disagreements"]` and printed. Outputs: `study.csv`,
`study.png`, `study.json` and `study.h5` (the learned rollouts, viewable with `meshsim view`).
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
from meshsim.outputs import atomic_path, write_atomic
from meshsim.threads import choose_threads, set_threads

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
              device: str = "cpu", threads: int = 0, tolerance: float = 0.2, batch: int = 8) -> dict:
    """Run the study and write its outputs into `out`; returns the report (also `study.json`).
    `threads`: torch CPU threads (0 = automatic, see meshsim.threads); `tolerance`: relative difference from the
    solver above which a verified learned answer is reported as a disagreement; `batch`: sweep points rolled out
    together as one batched graph (`learned_seconds` is then each point's share of the batch's time)."""
    from meshsim.demo import prepare_output_folder
    from meshsim.progress import progress
    from meshsim.scenarios import get_scenario
    from meshsim.train.checkpoint import load_model

    name, values = sweep
    scenario = get_scenario(scene)
    base = scenario.make_config(list(overrides))
    point_overrides = [list(overrides) + [_override(base, name, v)] for v in values]
    configs = [scenario.make_config(o) for o in point_overrides]  # every point validated before any work
    if not 0 <= verify <= len(values):
        raise ConfigError(f"--verify must be between 0 and the number of sweep values ({len(values)}), got {verify}")
    choose_threads(threads)  # validated before any work
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"--batch must be an integer >= 1 (sweep points rolled out together), got {batch!r}")
    if not tolerance > 0:
        raise ConfigError(f"--tolerance must be > 0 (a relative difference, e.g. 0.2), got {tolerance}")
    out = Path(out)
    prepare_output_folder(out)

    sim, _ = load_model(checkpoint, device)
    sim.eval()
    verified = set(np.linspace(0, len(values) - 1, verify).round().astype(int).tolist()) if verify else set()
    rows, rollouts = [], {}
    bar = progress(len(values), desc=f"study {name}", unit="point")
    starts, start_seconds = [], []
    for cfg in configs:  # the solver's first two frames: the learned rollout's inputs, part of its cost
        t0 = time.perf_counter()
        starts.append(_first_frames(scenario, cfg, seed))
        start_seconds.append(time.perf_counter() - t0)
    if device == "cpu":
        set_threads(threads, nodes=len(starts[0].mesh_pos) * min(batch, len(starts)))
    learned = []
    for first in range(0, len(starts), batch):
        chunk = starts[first:first + batch]
        t0 = time.perf_counter()
        answers = _learned_rollouts(sim, chunk, [_num_frames(cfg) for cfg in configs[first:first + batch]])
        share = (time.perf_counter() - t0) / len(chunk)
        learned += [(pred, stress, share) for pred, stress in answers]
    for index, (value, cfg, start, (pred, stress, seconds)) in enumerate(zip(values, configs, starts, learned)):
        row = {name: value, "learned_seconds": seconds, "start_seconds": start_seconds[index],
               **_quantities(start, pred, stress, start.dt, prefix="learned_")}
        if index in verified:
            t0 = time.perf_counter()
            truth = scenario.simulate(cfg, seed)
            row["solver_seconds"] = time.perf_counter() - t0
            frames = min(len(pred), len(truth.world_pos))
            gt_stress = truth.fields.get("stress")
            row.update(_quantities(truth, truth.world_pos[:frames], None if gt_stress is None else gt_stress[:frames],
                                   truth.dt, prefix="solver_"))
            row.update(_compare(row, pred[:frames], truth.world_pos[:frames]))
        rows.append(row)
        rollouts[f"point_{index:03d}"] = _as_trajectory(start, pred, stress, {name: value, "sweep": name})
        bar.update(1)
    bar.close()

    disagreements = [f"{name}={row[name]:g}: learned {q.replace('_', ' ')} differs from the solver's by "
                     f"{100 * row[f'reldiff_{q}']:+.0f}% (tolerance {100 * tolerance:.0f}%)"
                     for row in rows for q in QUANTITIES
                     if row.get(f"reldiff_{q}") is not None and abs(row[f"reldiff_{q}"]) > tolerance]
    report = {"checkpoint": str(checkpoint), "scene": scene, "sweep": name, "values": values, "seed": seed,
              "verified": sorted(verified), "tolerance": tolerance, "disagreements": disagreements, "points": rows}
    _write_outputs(out, report, rollouts)
    return report


def _override(cfg, name: str, value: float) -> str:
    """Fix `name` at `value`: sampled ranges (lo, hi) become (value, value)."""
    if not hasattr(cfg, name):
        fields = ", ".join(f.name for f in dataclasses.fields(cfg))
        raise ConfigError(f"--sweep: the scene has no parameter {name!r}; choose one of: {fields}")
    current = getattr(cfg, name)
    if isinstance(value, np.generic):  # numpy scalars print as np.float64(4.0) under numpy 2: plain numbers only
        value = value.item()
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


def _learned_rollouts(sim, starts: list, num_frames: list[int]) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Learned rollouts of several points at once (meshsim.models.rollout_loop.rollout_batch), each from its
    solver's first two frames: (positions [T, N, d], stress [T, N] or None). A point that diverges keeps only its
    two solver frames (the CSV's learned_frames says 2)."""
    import dataclasses

    import torch

    from meshsim.errors import RolloutDivergedError
    from meshsim.models.rollout_loop import HISTORY, rollout_batch

    for start in starts:
        node_type = torch.as_tensor(start.node_type, dtype=torch.long)
        moving = np.abs(start.world_pos[1] - start.world_pos[0]) > 0  # per component: SYMMETRIC nodes slide in y
        held = ~sim.output_mask(node_type).cpu().numpy()
        if (moving & held).any():
            raise ConfigError("the scene moves nodes that the model does not predict (prescribed motion); a study "
                              "needs the solver for those: use `meshsim rollout` on generated trajectories instead")
    frames = min(num_frames)
    # No ground truth ahead: the frames after the first two only hold the unpredicted nodes where they are
    # (the check above) and bound the divergence guard by the body's own extent.
    seeds = [dataclasses.replace(s, world_pos=np.concatenate([s.world_pos[:HISTORY]] +
                                                             [s.world_pos[HISTORY - 1:HISTORY]] * (frames - HISTORY)))
             for s in starts]
    out = []
    for start, result in zip(starts, rollout_batch(sim, seeds, frames - HISTORY)):
        if isinstance(result, RolloutDivergedError):
            out.append((start.world_pos[:HISTORY].astype(np.float32),
                        start.fields["stress"][:HISTORY] if "stress" in start.fields else None))
            continue
        out.append((result.pred_world_pos, result.pred_fields.get("stress")))
    return out


def _compare(row: dict, pred: np.ndarray, truth: np.ndarray) -> dict:
    """Relative difference of each learned quantity from the solver's, and position RMSE beside holding still."""
    from meshsim.metrics import rmse_per_step, skill, trivial_predictions
    from meshsim.models.rollout_loop import HISTORY

    out = {}
    for q in QUANTITIES:
        learned, solver = row.get(f"learned_{q}"), row.get(f"solver_{q}")
        ok = learned is not None and solver is not None and abs(solver) > 0
        out[f"reldiff_{q}"] = (learned - solver) / abs(solver) if ok else None
    out["position_rmse_all_x1e3"] = float(rmse_per_step(pred, truth, HISTORY).mean() * 1e3)
    hold = trivial_predictions(truth, HISTORY)["hold"]
    out["hold_rmse_all_x1e3"] = float(rmse_per_step(hold, truth, HISTORY).mean() * 1e3)
    out["skill"] = skill(out["position_rmse_all_x1e3"], out["hold_rmse_all_x1e3"])
    return out


def _quantities(traj, world_pos: np.ndarray, stress, dt: float, prefix: str) -> dict:
    """Quantities of interest over the predicted frames (from the rollout's third frame on)."""
    from meshsim.metrics import contact_frames
    from meshsim.models.rollout_loop import HISTORY

    node_type = np.asarray(traj.node_type)
    obstacle = node_type == NodeType.OBSTACLE
    body = ~obstacle
    disp = np.linalg.norm(world_pos[HISTORY:, body] - world_pos[:1, body], axis=-1)
    out = {f"{prefix}frames": int(len(world_pos)),
           f"{prefix}peak_displacement": float(disp.max()) if disp.size else None}
    out[f"{prefix}peak_von_mises"] = (None if stress is None or len(stress) <= HISTORY
                                      else float(np.max(stress[HISTORY:, body])))
    touching = contact_frames(traj.cells, traj.mesh_pos, node_type, world_pos[HISTORY:])
    out[f"{prefix}contact_duration"] = None if touching is None else float(np.sum(touching) * dt)
    return out


def _as_trajectory(start, pred: np.ndarray, stress, attrs: dict):
    from meshsim.datasets import Trajectory

    fields = {"stress": stress} if stress is not None else {}
    return Trajectory(cells=start.cells, mesh_pos=start.mesh_pos, node_type=start.node_type, world_pos=pred,
                      dt=start.dt, fields=fields, attrs={**start.attrs, **attrs, "source": "learned"})


def _write_outputs(out: Path, report: dict, rollouts: dict) -> None:
    from meshsim.datasets import TrajectoryWriter

    columns = list(dict.fromkeys(k for row in report["points"] for k in row))
    with atomic_path(out / "study.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(report["points"])
    write_atomic(out / "study.json", json.dumps(report, indent=1))
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
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)


def format_report(report: dict) -> str:
    """One row per sweep point: learned quantities, and on verified points the solver's, the relative
    difference, and the learned position RMSE beside holding still."""
    name = report["sweep"]

    def cell(value, scale=1.0):
        return "-" if value is None else f"{value * scale:.4g}"

    def pct(value):
        return "" if value is None else f"({100 * value:+.0f}%)"

    lines = [f"{name:>14} {'peak vM (MPa)':>20} {'peak disp (mm)':>20} {'contact (ms)':>18} {'RMSE x1e-3':>11} "
             f"{'hold':>8} {'skill':>6}"]
    for p in report["points"]:
        lines.append(f"{p[name]:>14.4g} {cell(p.get('learned_peak_von_mises'), 1e-6):>20} "
                     f"{cell(p.get('learned_peak_displacement'), 1e3):>20} "
                     f"{cell(p.get('learned_contact_duration'), 1e3):>18} {cell(p.get('position_rmse_all_x1e3')):>11} "
                     f"{cell(p.get('hold_rmse_all_x1e3')):>8} {cell(p.get('skill')):>6}")
        if "solver_frames" in p:
            shown = [cell(p.get(f"solver_{q}"), scale) + pct(p.get(f"reldiff_{q}"))
                     for q, scale in zip(QUANTITIES, (1e-6, 1e3, 1e3))]
            lines.append(f"{'  solver':>14} {shown[0]:>20} {shown[1]:>20} {shown[2]:>18}")
    lines.append("learned rows: the model's answers from its predicted frames; solver rows: the Warp FEM on the same "
                 "frames (learned - solver, relative); hold / skill: RMSE of holding every node still, "
                 "1 - RMSE / hold")
    for line in report.get("disagreements", []):
        lines.append(f"warning: {line}")
    if report.get("verified") and not report.get("disagreements"):
        lines.append(f"every verified learned answer is within {100 * report.get('tolerance', 0):.0f}% of the solver's")
    return "\n".join(lines)
