"""HCMT vs MeshGraphNets step times on the same graphs, and the Warp FEM solver's time per frame.

    python benchmarks/learned.py [--quick] [--threads N] [--device cpu|cuda]

Both models at their published sizes (MGN: 15 blocks, latent 128; HCMT: 2 CMT + 6 down/1 bottom/6 up blocks,
latent 128 = 4 heads x 32) on windows of one `impact-plate-2d` trajectory (small preset with --quick, the
benchmark preset otherwise). Times are medians over repeated steps after a warm-up:
- train step: loss (with noise, contacts, hierarchy levels) + backward + Adam step, one graph per batch;
- rollout step: `LearnedSimulator.step` (no grad) on the prepared mesh;
- solver frame: Warp FEM wall time of the whole trajectory (kernels already compiled) / stored frames.
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

from meshsim.models import LearnedSimulator, ModelConfig

PUBLISHED = {
    "mgn": {"kind": "mgn", "latent": 128, "blocks": 15, "mlp_layers": 2},
    "hcmt": {"kind": "hcmt", "latent": 128, "heads": 4, "cmt_blocks": 2, "levels": 6, "mlp_layers": 2},
}


def solve(quick: bool):
    """(trajectory, seconds of solver time per stored frame)."""
    from meshsim.scenarios import get_scenario

    scenario = get_scenario("impact-plate-2d")
    cfg = scenario.make_config([] if quick else ["preset=benchmark"])
    scenario.simulate(scenario.make_config(["num_frames=2", "duration=1e-4"]), seed=0)  # compile the kernels
    start = time.perf_counter()
    traj = scenario.simulate(cfg, seed=0)
    return traj, (time.perf_counter() - start) / (traj.world_pos.shape[0] - 1)


def windows(traj):
    return [{"mesh_pos": traj.mesh_pos, "cells": traj.cells, "node_type": traj.node_type,
             "world_pos": traj.world_pos[t - 1 : t + 2], "fields/stress": traj.fields["stress"][t - 1 : t + 2],
             "attrs": traj.attrs, "traj_id": "0", "t": t} for t in range(1, traj.world_pos.shape[0] - 1)]


def median_time(fn, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(kind: str, traj, radius: float, repeats: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    cfg = ModelConfig(**PUBLISHED[kind], contact_radius=radius, noise_std=1e-5)
    sim = LearnedSimulator(cfg, dim=traj.mesh_pos.shape[1]).to(device).train()
    samples = windows(traj)
    start = time.perf_counter()
    batches = [sim.collate([s]).to(device) for s in samples]
    collate = (time.perf_counter() - start) / len(samples)
    for batch in batches:
        sim.loss(batch, accumulate_stats=True)
    optimizer = torch.optim.Adam(sim.parameters(), lr=1e-4)
    cursor = iter(range(10**9))

    def train_step():
        loss, _ = sim.loss(batches[next(cursor) % len(batches)])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    train_step()
    train = median_time(train_step, repeats, device)
    sim.eval()
    static = sim.prepare(traj.mesh_pos, traj.cells, traj.node_type, traj.attrs)
    frames = torch.as_tensor(traj.world_pos, device=device)
    t = traj.world_pos.shape[0] // 2
    sim.step(static, frames[t - 1], frames[t], frames[t + 1])
    rollout = median_time(lambda: sim.step(static, frames[t - 1], frames[t], frames[t + 1]), repeats, device)
    params = sum(p.numel() for p in sim.parameters())
    return {"train_step_s": train, "rollout_step_s": rollout, "collate_s": collate, "parameters": params}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small mesh, few repeats")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    traj, solver_frame = solve(args.quick)
    edges = np.concatenate([traj.cells[:, [0, 1]], traj.cells[:, [1, 2]], traj.cells[:, [2, 0]]])
    edge_length = float(np.median(np.linalg.norm(traj.mesh_pos[edges[:, 0]] - traj.mesh_pos[edges[:, 1]], axis=1)))
    radius = 2.0 * edge_length
    repeats = 5 if args.quick else 20
    results = {kind: measure(kind, traj, radius, repeats, device) for kind in ("mgn", "hcmt")}
    for kind, r in results.items():
        print(f"{kind}: train step {r['train_step_s'] * 1e3:.1f} ms, rollout step {r['rollout_step_s'] * 1e3:.1f} ms,"
              f" collate {r['collate_s'] * 1e3:.1f} ms, {r['parameters']} parameters", file=sys.stderr)
    print(f"solver: {solver_frame * 1e3:.1f} ms per frame", file=sys.stderr)
    hcmt, mgn = results["hcmt"], results["mgn"]
    print(json.dumps({
        "benchmark": "learned",
        "quick": args.quick,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "num_nodes": int(traj.mesh_pos.shape[0]),
        "num_frames": int(traj.world_pos.shape[0]),
        "contact_radius": radius,
        "hcmt_over_mgn_train_step_time": hcmt["train_step_s"] / mgn["train_step_s"],
        "hcmt_over_mgn_rollout_step_time": hcmt["rollout_step_s"] / mgn["rollout_step_s"],
        "solver_over_hcmt_frame_time": solver_frame / hcmt["rollout_step_s"],
        "solver_frame_s": solver_frame,
        "mgn": mgn,
        "hcmt": hcmt,
        "goals": {"hcmt_over_mgn_train_step_time": "<= 1", "solver_over_hcmt_frame_time": ">= 20"},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
