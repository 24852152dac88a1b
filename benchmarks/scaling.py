"""Cost per frame against node count: the Warp FEM solver and a learned HCMT, side by side, on refined meshes.

    python benchmarks/scaling.py [--quick] [--threads 1] [--frames 4] [--plot scaling.png]
                                 [--checkpoint impact-plate-2d=PATH_OR_SHIPPED_NAME ...]

impact-plate-2d and deforming-plate-3d from benchmark size (`preset=benchmark`) up to >= 50k nodes: every mesh
resolution parameter of the scenario (impact-plate-2d: cells_x, cells_y, ball_rings; deforming-plate-3d: cells,
layers, actuator_cells) multiplied by a scale factor, the frame interval kept. At each size, in one process:
- solver: `common.simulate` runs the scenario for 1 + frames + 2 frames; seconds per frame are the solver's own
  frame loop (FemSolver.simulate) over its frame intervals, substeps per frame are the explicit FEM's CFL count;
- learned: `meshsim.rollout.rollout_batch` over that trajectory, batch 1 and batch 8 (8 copies of the trajectory as
  one batched graph); seconds per frame are the median of its per-step times (per trajectory), the first step
  included in the median as a warm-up outlier; the per-mesh preparation (graph, hierarchy) is timed apart;
- contact radius: the recipe's, in metres, kept fixed (`--radius fixed`) makes the HCMT's contact set (OBSTACLE <->
  NORMAL pairs closer than it) grow like N^2 in 2D (measured: 31k edges at 2k nodes, 428k at 7.6k nodes), so it
  cannot reach 50k nodes; by default (`--radius scaled`) it shrinks with the element size (recipe radius / scale),
  as a model trained at that resolution would have it, and the contact set grows like N. Both counts are
  recorded at each size (the fixed-radius count up to scale 2);
- peak memory: this process's resident set high-water mark (VmHWM, reset before each part; it includes the
  ~0.5-1 GiB of loaded libraries, `rss_before_mib`).
The model is an HCMT at the scenario's training recipe size (data/train_hcmt_impact_plate.yaml,
data/train_hcmt_deforming_plate.yaml: latent 64, 3 levels) with random weights (normalizers filled from two
benchmark-size windows), or `--checkpoint`. The network's cost does not depend on its weights, but the contact set
is searched from the predicted positions: in impact-plate-2d the ball is predicted, and a random network drives it
into the plate (contact edges 28k -> 87k over 4 steps at benchmark size against ~31k in the ground truth, step
0.24 -> 0.44 s; the shipped model stays at 33-39k, 0.26-0.31 s), so keep the timed frames few or pass the shipped
model (`--checkpoint impact-plate-2d=hcmt-impact-plate-2d`); `contact_edges_end` (last predicted frame, batch 1)
against `contact_edges` (ground truth) shows it. The benchmark-size model run on the finer meshes says nothing
about its accuracy there. Growth exponents: least squares on log-log; the crossover
is where the fitted solver and learned lines meet. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import PeakRSS, simulate

ROOT = Path(__file__).resolve().parent.parent
HISTORY = 2  # ground-truth frames a rollout starts from (meshsim.rollout.HISTORY)
BATCHES = (1, 8)

# scenario -> (training recipe of its HCMT, resolution parameters, scale factors of the full run, of --quick)
SCENARIOS = {
    "impact-plate-2d": ("train_hcmt_impact_plate.yaml", ("cells_x", "cells_y", "ball_rings"),
                        (1.0, 2.0, 3.3, 5.3), (1.0, 2.0)),
    "deforming-plate-3d": ("train_hcmt_deforming_plate.yaml", ("cells", "layers", "actuator_cells"),
                           (1.0, 1.7, 2.6, 4.0), (1.0, 2.0)),
}


def overrides_at(name: str, scale: float, frames: int, quick: bool) -> list[str]:
    """Scenario overrides: resolution parameters times `scale`, `frames` frames at the preset's frame interval."""
    from meshsim.scenarios import get_scenario

    base = get_scenario(name).make_config([] if quick else ["preset=benchmark"])
    out = [] if quick else ["preset=benchmark"]
    for key in SCENARIOS[name][1]:
        value = getattr(base, key)
        scaled = [max(1, round(v * scale)) for v in np.atleast_1d(value)]
        listed = isinstance(value, (tuple, list))
        out.append(f"{key}=[{','.join(map(str, scaled))}]" if listed else f"{key}={scaled[0]}")
    frame_dt = base.duration / (base.num_frames - 1)
    return out + [f"num_frames={frames}", f"duration={frame_dt * (frames - 1)!r}"]


def model_for(name: str, checkpoint: str | None, traj):
    """(LearnedSimulator in eval mode, description): the checkpoint, or the recipe's HCMT with random weights and
    normalizers filled from the first windows of `traj` (a benchmark-size trajectory)."""
    if checkpoint:
        from meshsim.train.checkpoint import load_model

        sim, _ = load_model(checkpoint)
        return sim, {"weights": f"checkpoint {checkpoint}", "model_config": _plain(sim.cfg)}
    from learned import windows

    from meshsim.config import load_config
    from meshsim.models import LearnedSimulator
    from meshsim.train.config import TrainConfig

    recipe = ROOT / "data" / SCENARIOS[name][0]
    cfg = load_config(TrainConfig, recipe).model
    torch.manual_seed(0)
    sim = LearnedSimulator(cfg, dim=traj.mesh_pos.shape[1])
    with torch.no_grad():
        sim.loss(sim.collate(windows(traj)[:2]), accumulate_stats=True)
    return sim.eval(), {"weights": f"random (seed 0), normalizers from 2 windows; recipe data/{recipe.name}",
                        "model_config": _plain(cfg)}


class OnFirstSize:
    """`model(traj) -> (sim, recipe contact radius)`: built, and warmed up, at the first (smallest) size, whose
    windows fill the normalizers of a random model; the same model afterwards."""

    def __init__(self, name: str, checkpoint: str | None):
        self.name, self.checkpoint, self.sim = name, checkpoint, None

    def __call__(self, traj):
        if self.sim is None:
            from meshsim.rollout import rollout_batch

            self.sim, self.description = model_for(self.name, self.checkpoint, traj)
            self.radius = self.sim.cfg.contact_radius
            rollout_batch(self.sim, [traj], 1)  # warm-up: lazy initialisation, kernel loading
        return self.sim, self.radius


def _plain(cfg) -> dict:
    from meshsim.config import to_dict

    return to_dict(cfg)


def learned(sim, traj, batch: int, steps: int) -> dict:
    """Seconds per frame and trajectory of `rollout_batch` over `batch` copies of `traj`, and its peak memory."""
    from meshsim.errors import RolloutDivergedError
    from meshsim.rollout import rollout_batch

    with PeakRSS() as mem:
        start = time.perf_counter()
        results = rollout_batch(sim, [traj] * batch, steps)
        call = time.perf_counter() - start
    diverged = [r for r in results if isinstance(r, RolloutDivergedError)]
    if diverged:  # its step times are lost with it: a random network must stay inside the 10x box for a few steps
        raise SystemExit(f"learned rollout diverged at {traj.mesh_pos.shape[0]} nodes, batch {batch}: {diverged[0]}")
    steps_s = results[0].step_seconds
    end = contact_count(traj, sim.cfg.contact_radius, results[0].pred_world_pos[-1])
    return {"frame_s": float(statistics.median(steps_s)), "step_s": [round(float(s), 5) for s in steps_s],
            "contact_edges_end": end,
            "call_s": call, "peak_rss_mib": mem.peak_mib, "rss_before_mib": mem.before_mib}


def contact_count(traj, radius: float, positions=None) -> int:
    """HCMT contact edges (both directions) at `radius` for `positions` (default: the trajectory's last frame)."""
    from meshsim.graph.edges import contact_edges

    pos = traj.world_pos[-1] if positions is None else positions
    return int(contact_edges(torch.as_tensor(pos), torch.as_tensor(traj.node_type), radius).shape[1])


def measure_size(name: str, scale: float, frames: int, quick: bool, model, radius: str, clock) -> dict:
    from meshsim.datasets.schema import NodeType
    from meshsim.rollout import numeric_attrs

    over = overrides_at(name, scale, HISTORY + frames, quick)
    with PeakRSS() as mem:
        traj, timing = simulate(name, over, clock=clock)
    sim, recipe_radius = model(traj)
    sim.cfg.contact_radius = recipe_radius / scale if radius == "scaled" else recipe_radius
    static_s = time.perf_counter()
    static = sim.prepare(traj.mesh_pos, traj.cells, traj.node_type, numeric_attrs(traj.attrs))
    static_s = time.perf_counter() - static_s
    row = {"scale": scale, "overrides": over, "nodes": int(traj.mesh_pos.shape[0]),
           "solver_nodes": int(np.count_nonzero(traj.node_type != NodeType.OBSTACLE)),  # the rest move rigidly
           "cells": int(traj.cells.shape[0]), "substeps": int(traj.attrs["substeps"]),
           "solver_dt": float(traj.attrs["solver_dt"]), "solver_frames": timing["intervals"],
           "solver_frame_s": timing["solver_frame_s"], "solver_setup_s": timing["total_s"] - timing["solver_s"],
           "solver_peak_rss_mib": mem.peak_mib, "solver_rss_before_mib": mem.before_mib,
           "prepare_s": static_s, "memory_method": mem.method, "contact_radius": sim.cfg.contact_radius,
           "contact_edges": contact_count(traj, sim.cfg.contact_radius),
           "contact_edges_fixed_radius": contact_count(traj, recipe_radius) if scale <= 2.0 else None,
           "mesh_edges": int(static.edge_index.shape[1])}
    for batch in BATCHES:
        part = learned(sim, traj, batch, frames)
        row.update({f"learned_b{batch}_{k}": v for k, v in part.items()})
        row[f"solver_over_learned_b{batch}"] = row["solver_frame_s"] / part["frame_s"]
    print(f"{name} x{scale:g}: {row['nodes']} nodes, solver {row['solver_frame_s']:.3g} s/frame "
          f"({row['substeps']} substeps), learned {row['learned_b1_frame_s']:.3g} (b1) "
          f"{row['learned_b8_frame_s']:.3g} (b8 per traj) s/frame, peak RSS solver {row['solver_peak_rss_mib']:.0f} "
          f"/ learned b8 {row['learned_b8_peak_rss_mib']:.0f} MiB", file=sys.stderr, flush=True)
    return row


def fit(nodes, values) -> dict:
    """Least squares on log-log: values ~ coefficient * nodes ** exponent."""
    exponent, log_c = np.polyfit(np.log(nodes), np.log(values), 1)
    return {"exponent": float(exponent), "coefficient": float(math.exp(log_c))}


def crossover(solver: dict, model: dict, ratio: float = 1.0) -> float | None:
    """Nodes where the fitted solver time is `ratio` times the fitted learned time (None: parallel lines, or a
    crossing beyond 1e300 nodes, which nearly parallel fits of noisy timings give)."""
    slope = solver["exponent"] - model["exponent"]
    if abs(slope) < 1e-9:
        return None
    log_nodes = math.log(ratio * model["coefficient"] / solver["coefficient"]) / slope
    return float(math.exp(log_nodes)) if abs(log_nodes) < 690 else None


def summarise(rows: list[dict]) -> dict:
    nodes = [r["nodes"] for r in rows]
    fits = {"solver_frame_s": fit(nodes, [r["solver_frame_s"] for r in rows]),
            "substeps": fit(nodes, [r["substeps"] for r in rows])}
    for b in BATCHES:
        fits[f"learned_b{b}_frame_s"] = fit(nodes, [r[f"learned_b{b}_frame_s"] for r in rows])
    out = {"fits": fits}
    for b in BATCHES:
        n1 = crossover(fits["solver_frame_s"], fits[f"learned_b{b}_frame_s"])
        n20 = crossover(fits["solver_frame_s"], fits[f"learned_b{b}_frame_s"], 20.0)
        out[f"crossover_nodes_b{b}"] = n1
        out[f"crossover_inside_measured_b{b}"] = n1 is not None and min(nodes) <= n1 <= max(nodes)
        out[f"nodes_for_ratio_20_b{b}"] = n20
    return out


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4.2), squeeze=False)
    for ax, (name, res) in zip(axes[0], results.items()):
        nodes = np.array([r["nodes"] for r in res["sizes"]], float)
        grid = np.geomspace(nodes.min(), nodes.max(), 50)
        for key, label, style in (("solver_frame_s", "Warp FEM solver", "o-"),
                                  ("learned_b1_frame_s", "HCMT batch 1", "s-"),
                                  ("learned_b8_frame_s", "HCMT batch 8 (per trajectory)", "^-")):
            f = res["fits"][key]
            line, = ax.loglog(nodes, [r[key] for r in res["sizes"]], style, label=f"{label}: N^{f['exponent']:.2f}")
            ax.loglog(grid, f["coefficient"] * grid ** f["exponent"], ":", color=line.get_color(), lw=1)
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(name)
        ax.set_xlabel("nodes")
        ax.set_ylabel("seconds per frame")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("cost per frame against node count (1 thread; random-weight HCMT: speed only)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 small sizes per scenario (small preset), < 1 min")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (Warp's CPU kernels use one)")
    parser.add_argument("--frames", type=int, default=None, help="timed frames per size (default 4, quick 3)")
    parser.add_argument("--plot", default=None, help="write the log-log plot to this PNG")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset")
    parser.add_argument("--scales", default=None, help="comma-separated scale factors (default: per scenario)")
    parser.add_argument("--radius", choices=("scaled", "fixed"), default="scaled",
                        help="HCMT contact radius: recipe radius / scale (default), or the recipe's in metres")
    parser.add_argument("--checkpoint", action="append", default=[], metavar="SCENARIO=PATH",
                        help="a trained model (file or shipped name) for a scenario instead of random weights")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    frames = args.frames or (3 if args.quick else 4)
    checkpoints = dict(item.split("=", 1) for item in args.checkpoint)
    names = [n for n in args.scenarios.split(",") if n]
    unknown = sorted(set(names) - set(SCENARIOS) | set(checkpoints) - set(SCENARIOS))
    if unknown or frames < 1:
        parser.error(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}" if unknown
                     else "--frames must be >= 1")
    load_before = os.getloadavg()
    start = time.perf_counter()
    results, models = {}, {}
    for name in names:
        scales = [float(s) for s in args.scales.split(",")] if args.scales else SCENARIOS[name][3 if args.quick else 2]
        model = OnFirstSize(name, checkpoints.get(name))
        rows = [measure_size(name, s, frames, args.quick, model, args.radius, time.perf_counter) for s in scales]
        models[name] = model.description
        results[name] = {"sizes": rows, **summarise(rows)}
    if args.plot:
        plot(results, args.plot)
    flat = {}
    for name, res in results.items():
        key = name.replace("-", "_")
        largest = res["sizes"][-1]
        flat[f"{key}_largest_nodes"] = largest["nodes"]
        flat[f"{key}_solver_over_learned_b1_largest"] = largest["solver_over_learned_b1"]
        flat[f"{key}_solver_over_learned_b8_largest"] = largest["solver_over_learned_b8"]
        for what in ("solver_frame_s", "substeps", "learned_b1_frame_s", "learned_b8_frame_s"):
            flat[f"{key}_{what.removesuffix('_frame_s')}_exponent"] = res["fits"][what]["exponent"]
        flat[f"{key}_crossover_nodes_b1"] = res["crossover_nodes_b1"]
    print(json.dumps({
        "benchmark": "scaling", "quick": args.quick, "torch_threads": torch.get_num_threads(),
        "warp_cpu_threads": 1, "cores": os.cpu_count(), "frames_per_size": frames, "contact_radius": args.radius,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "seconds": time.perf_counter() - start, "plot": args.plot,
        "memory": "process resident set high-water mark (VmHWM, reset before each part), MiB; includes libraries",
        "note": "the network's cost does not depend on its weights, the contact set does (searched from predicted "
                "positions: compare learned_b1_contact_edges_end with contact_edges); the benchmark-size model on "
                "finer meshes says nothing about its accuracy there (a separate question)",
        "models": models, **flat, "scenarios": results,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
