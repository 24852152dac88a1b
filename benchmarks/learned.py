"""HCMT vs MeshGraphNets step times on the same graphs, and the Warp FEM solver's time per frame.

    python benchmarks/learned.py [--quick] [--threads N] [--device cpu|cuda]

Both models at their published sizes (MGN: 15 blocks, latent 128; HCMT: 2 CMT + 6 down/1 bottom/6 up blocks,
latent 128 = 4 heads x 32) on windows of one `impact-plate-2d` trajectory (small preset with --quick, the
benchmark preset otherwise). Times are medians over repeated steps after a warm-up:
- train step: loss (with noise, contacts, hierarchy levels) + backward + Adam step, one graph per batch;
- rollout step: `LearnedSimulator.step` (no grad) on the prepared mesh; `rollout_loop_step_s`: a whole
  `meshsim.rollout.rollout` of up to 20 steps divided by its steps (the loop's overhead on top of the network);
- solver frame: Warp FEM wall time of the whole trajectory (kernels already compiled) / stored frames;
- the ceiling of solver_over_hcmt on this machine: the matmul FLOPs of one HCMT rollout step (torch's
  FlopCounterMode; the fused attention kernel and elementwise ops are not counted, so this is a lower bound)
  over the machine's measured float32 matmul rate at the step's own shapes (`matmul_gflops`): however well the
  rest were optimised, a step cannot take less than `hcmt_step_matmul_floor_s`.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import numpy as np
import torch

from meshsim.errors import ConfigError
from meshsim.models import LearnedSimulator, ModelConfig

CLOCK = time.perf_counter  # --clock cpu: time.process_time (robust on a loaded machine, CPU device only)

PUBLISHED = {
    "mgn": {"kind": "mgn", "latent": 128, "blocks": 15, "mlp_layers": 2},
    "hcmt": {"kind": "hcmt", "latent": 128, "heads": 4, "cmt_blocks": 2, "levels": 6, "mlp_layers": 2},
}


def solve(quick: bool):
    """(trajectory, seconds of solver time per stored frame: the whole scenario run / frame intervals)."""
    from common import simulate

    try:
        traj, timing = simulate("impact-plate-2d", [] if quick else ["preset=benchmark"], clock=CLOCK)
    except ConfigError:  # no benchmark recipe shipped yet: HCMT Impact Plate size (~2200 nodes, 50 frames)
        traj, timing = simulate("impact-plate-2d", ["cells_x=140", "cells_y=14", "ball_rings=6", "num_frames=50"],
                                clock=CLOCK)
    return traj, timing["frame_s"]


def windows(traj):
    return [{"mesh_pos": traj.mesh_pos, "cells": traj.cells, "node_type": traj.node_type,
             "world_pos": traj.world_pos[t - 1 : t + 2], "fields/stress": traj.fields["stress"][t - 1 : t + 2],
             "attrs": traj.attrs, "traj_id": "0", "t": t} for t in range(1, traj.world_pos.shape[0] - 1)]


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = CLOCK()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return CLOCK() - start


class Runner:
    """One model at its published size, its batches, optimizer and prepared mesh; one timed step at a time."""

    def __init__(self, kind: str, traj, radius: float, device: torch.device):
        torch.manual_seed(0)
        cfg = ModelConfig(**PUBLISHED[kind], contact_radius=radius, noise_std=1e-5)
        self.sim = LearnedSimulator(cfg, dim=traj.mesh_pos.shape[1]).to(device).train()
        samples = windows(traj)
        start = time.perf_counter()
        self.batches = [self.sim.collate([s]).to(device) for s in samples]
        self.collate_s = (time.perf_counter() - start) / len(samples)
        for batch in self.batches:
            self.sim.loss(batch, accumulate_stats=True)
        self.optimizer = torch.optim.Adam(self.sim.parameters(), lr=1e-4)
        self.static = self.sim.prepare(traj.mesh_pos, traj.cells, traj.node_type, traj.attrs)
        self.frames = torch.as_tensor(traj.world_pos, device=device)
        self.traj = traj
        self.device, self.count = device, 0
        self.parameters = sum(p.numel() for p in self.sim.parameters())

    def train_step(self) -> float:
        def run():
            self.sim.train()
            loss, _ = self.sim.loss(self.batches[self.count % len(self.batches)])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()

        self.count += 1
        return timed(run, self.device)

    def _middle_step(self):
        """One rollout step (`step` runs without grad) from the middle of the trajectory."""
        self.sim.eval()
        t = self.frames.shape[0] // 2
        return self.sim.step(self.static, self.frames[t - 1], self.frames[t], self.frames[t + 1])

    def rollout_step(self) -> float:
        return timed(self._middle_step, self.device)

    def rollout_step_flops(self) -> int:
        """Matmul FLOPs of one rollout step (torch ops only; the Warp attention kernel is not counted)."""
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            self._middle_step()
        return counter.get_total_flops()

    def rollout_loop_step(self, steps: int) -> float | None:
        """Time per step of a whole `meshsim.rollout.rollout` (mesh preparation, contacts, divergence checks,
        copies to numpy included): compared with `rollout_step`, the overhead of the loop around the network.
        None when the untrained network leaves the divergence box first."""
        from meshsim.errors import RolloutDivergedError
        from meshsim.rollout import rollout

        try:
            return timed(lambda: rollout(self.sim, self.traj, steps), self.device) / steps
        except RolloutDivergedError:
            return None


def matmul_gflops(rows: int, width: int, device: torch.device, seconds: float = 1.0) -> float:
    """Float32 matmul rate of this machine at an HCMT step's typical shape: [rows, width] x [width, width]."""
    a = torch.randn(rows, width, device=device)
    w = torch.randn(width, width, device=device)
    out = torch.empty(rows, width, device=device)
    torch.mm(a, w, out=out)  # warm-up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            torch.mm(a, w, out=out)
        if device.type == "cuda":
            torch.cuda.synchronize()
        count += 10
    return 2.0 * rows * width * width * count / (time.perf_counter() - start) / 1e9


def measure(traj, radius: float, repeats: int, device: torch.device) -> dict:
    """Median step times; the two models alternate so that changing machine load hits both alike."""
    runners = {kind: Runner(kind, traj, radius, device) for kind in ("mgn", "hcmt")}
    times = {kind: {"train": [], "rollout": []} for kind in runners}
    for r in range(repeats + 1):  # the first round warms up
        for kind, runner in runners.items():
            train, rollout = runner.train_step(), runner.rollout_step()
            if r:
                times[kind]["train"].append(train)
                times[kind]["rollout"].append(rollout)
    loop_steps = min(20, traj.world_pos.shape[0] - 2)
    return {kind: {"train_step_s": statistics.median(times[kind]["train"]),
                   "rollout_step_s": statistics.median(times[kind]["rollout"]),
                   "rollout_loop_step_s": runner.rollout_loop_step(loop_steps),
                   "rollout_step_matmul_gflop": runner.rollout_step_flops() / 1e9,
                   "collate_s": runner.collate_s, "parameters": runner.parameters}
            for kind, runner in runners.items()}


def shipped(traj, solver_frame: float, quick: bool, device: torch.device) -> dict:
    """The shipped impact-plate-2d HCMT (meshsim models): rollout time per frame and trajectory at batch 1 and
    batch 8 on the benchmark trajectory, and a 16-point ball_speed study, learned total over solver total."""
    import tempfile

    from meshsim.rollout import rollout_batch
    from meshsim.study import run_study
    from meshsim.train.checkpoint import load_model
    from meshsim.train.pretrained import registry

    name = "hcmt-impact-plate-2d"
    if name not in registry() or quick:  # the shipped model knows the benchmark mesh only
        return {}
    sim, _ = load_model(name, device)
    steps = traj.world_pos.shape[0] - 2
    per_frame = {}
    for batch in (1, 8):
        rollout_batch(sim, [traj] * batch, 2)  # warm-up
        start = CLOCK()
        rollout_batch(sim, [traj] * batch, steps)
        per_frame[batch] = (CLOCK() - start) / steps / batch
    with tempfile.TemporaryDirectory() as tmp:
        report = run_study(name, "impact-plate-2d", ("ball_speed", list(np.linspace(4.0, 12.0, 16))), verify=16,
                           out=tmp, overrides=("preset=benchmark",), device=str(device),
                           threads=torch.get_num_threads())
    learned = sum(p["learned_seconds"] + p["start_seconds"] for p in report["points"])  # + its 2 solver frames
    solver = sum(p["solver_seconds"] for p in report["points"])
    return {"shipped_hcmt_frame_s": per_frame[1], "shipped_hcmt_frame_s_batch8": per_frame[8],
            "solver_over_shipped_hcmt_frame_time": solver_frame / per_frame[1],
            "solver_over_shipped_hcmt_frame_time_batch8": solver_frame / per_frame[8],
            "study_learned_s": learned, "study_solver_s": solver, "study_learned_over_solver_time": learned / solver,
            "study_points_within_tolerance": sum(1 for p in report["points"]
                                                 if all(abs(p.get(f"reldiff_{q}") or 0) <= report["tolerance"]
                                                        for q in ("peak_von_mises", "peak_displacement"))),
            "study_mean_skill": float(np.mean([p["skill"] for p in report["points"] if p.get("skill") is not None]))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small mesh, few repeats")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or this process's CPU time (CPU device; steadier on a busy machine)")
    args = parser.parse_args(argv)
    global CLOCK
    if args.clock == "cpu":
        if args.device != "cpu":
            parser.error("--clock cpu measures CPU work only: use it with --device cpu")
        CLOCK = time.process_time
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    traj, solver_frame = solve(args.quick)
    edges = np.concatenate([traj.cells[:, [0, 1]], traj.cells[:, [1, 2]], traj.cells[:, [2, 0]]])
    edge_length = float(np.median(np.linalg.norm(traj.mesh_pos[edges[:, 0]] - traj.mesh_pos[edges[:, 1]], axis=1)))
    radius = 2.0 * edge_length
    repeats = 5 if args.quick else 20
    results = measure(traj, radius, repeats, device)
    for kind, r in results.items():
        print(f"{kind}: train step {r['train_step_s'] * 1e3:.1f} ms, rollout step {r['rollout_step_s'] * 1e3:.1f} ms,"
              f" collate {r['collate_s'] * 1e3:.1f} ms, {r['parameters']} parameters", file=sys.stderr)
    print(f"solver: {solver_frame * 1e3:.1f} ms per frame", file=sys.stderr)
    hcmt, mgn = results["hcmt"], results["mgn"]
    ship = shipped(traj, solver_frame, args.quick, device)
    # Mesh edges (both directions) are the rows of most of a step's matmuls (per-edge projections).
    gflops = matmul_gflops(2 * len(np.unique(np.sort(edges, axis=1), axis=0)), PUBLISHED["hcmt"]["latent"], device)
    floor = hcmt["rollout_step_matmul_gflop"] / gflops
    print(f"matmul {gflops:.0f} GFLOP/s: HCMT step >= {floor * 1e3:.1f} ms ({hcmt['rollout_step_matmul_gflop']:.2f}"
          f" GFLOP of matmuls)", file=sys.stderr)
    print(json.dumps({
        "benchmark": "learned",
        "quick": args.quick,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "clock": args.clock,
        "machine": platform.processor() or platform.machine(),
        "num_nodes": int(traj.mesh_pos.shape[0]),
        "num_frames": int(traj.world_pos.shape[0]),
        "contact_radius": radius,
        "hcmt_over_mgn_train_step_time": hcmt["train_step_s"] / mgn["train_step_s"],
        "hcmt_over_mgn_rollout_step_time": hcmt["rollout_step_s"] / mgn["rollout_step_s"],
        "solver_over_hcmt_frame_time": solver_frame / hcmt["rollout_step_s"],
        "solver_frame_s": solver_frame,
        "matmul_gflops": gflops,
        "hcmt_step_matmul_floor_s": floor,
        "solver_over_hcmt_ceiling": solver_frame / floor,
        "mgn": mgn,
        "hcmt": hcmt,
        **ship,
        "goals": {"hcmt_over_mgn_train_step_time": "<= 1", "solver_over_hcmt_frame_time": ">= 20",
                  "solver_over_shipped_hcmt_frame_time": ">= 3", "solver_over_shipped_hcmt_frame_time_batch8": ">= 10",
                  "study_learned_over_solver_time": "<= 0.2"},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
