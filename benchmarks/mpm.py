"""MLS-MPM step throughput on this machine (Warp, CPU unless CUDA is available).

fwd: one explicit step (zero grid, P2G, grid update, G2P) of 20,000 particles on a 32^3 grid.
fwdbwd: the same step plus its backward (grid recomputed, adjoint G2P, grid, P2G into Warp-owned grads), as a
rollout's backward needs it (the grid is always recomputed, even though here it would still be valid).
Particles are uniform in [0.25, 0.75]^3 in random order (on this CPU the same particles in lattice order, as
sampled scenes store them, measured no faster: the grid fits in cache).
bridge_*: the same through the torch autograd.Function (copies in and out of the Warp buffers included).
On CPU the particle kernels run on `--threads` cores (default: torch's CPU thread count; Warp itself runs a
CPU kernel on one thread); the *_1thread numbers, timed in the same run, are one core's.
Numbers are particle-substeps per second (particles x steps / wall time), median of repeated timings.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch
import warp as wp

from meshsim.physics.mpm import DiffMPM, MPMConfig, MPMSolver


def _median_seconds(fn, reps: int, inner: int) -> tuple[float, float]:
    """Median wall time and median process CPU time per call (CPU time discounts other jobs on a busy host)."""
    fn()  # warm-up (kernel load)
    wall, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(inner):
            fn()
        wp.synchronize()
        wall.append((time.perf_counter() - t0) / inner)
        cpu.append((time.process_time() - c0) / inner)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--particles", type=int, default=20000)
    parser.add_argument("--res", type=int, default=32)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's thread count)")
    args = parser.parse_args()
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # other jobs inflate wall times
    wanted = args.threads or torch.get_num_threads()
    torch.set_num_threads(1)  # the bridge's tensor copies (the solver threads are set explicitly)
    reps, inner = (3, 5) if args.quick else (7, 20)
    n = args.particles
    rng = np.random.default_rng(0)
    x = rng.uniform(0.25, 0.75, (n, 3)).astype(np.float32)
    v = rng.normal(size=(n, 3)).astype(np.float32)
    vol = np.full(n, 0.125 / n, np.float32)
    cfg = MPMConfig(res=args.res, dt=1e-4)

    def solver_with(threads):
        solver = MPMSolver(cfg, 1000 * vol, vol, device=args.device, threads=threads)
        for arr, val in ((solver.x, x), (solver.v, v)):
            wp.to_torch(arr, requires_grad=False).copy_(torch.as_tensor(val))
        wp.to_torch(solver.F, requires_grad=False).copy_(torch.eye(3).expand(n, 3, 3))
        wp.to_torch(solver.tau, requires_grad=False).normal_(std=10.0)
        wp.to_torch(solver.x1.grad, requires_grad=False).normal_()
        return solver

    solver, single = solver_with(wanted), solver_with(1)
    threads = len(solver.particle_ranges)
    fwd, fwd_cpu = _median_seconds(solver.step, reps, inner)
    bwd, bwd_cpu = _median_seconds(solver.backward, reps, inner)
    fwd1, _ = _median_seconds(single.step, reps, inner)
    bwd1, _ = _median_seconds(single.backward, reps, inner)
    print(f"warp step {fwd * 1e3:.2f} ms, backward {bwd * 1e3:.2f} ms ({n} particles, {args.res}^3, "
          f"{threads} threads; one thread: {fwd1 * 1e3:.2f} ms, {bwd1 * 1e3:.2f} ms)")

    sim = DiffMPM(cfg, 1000 * vol, vol, device=args.device, threads=wanted)
    dev = "cpu" if args.device == "cpu" else "cuda"
    xs = [torch.as_tensor(a, device=dev) for a in (x, v)]
    C = torch.zeros(n, 3, 3, device=dev)
    F = torch.eye(3, device=dev).expand(n, 3, 3).contiguous()
    tau = torch.randn(n, 3, 3, device=dev, requires_grad=True)

    def bridge_fwd():
        with torch.no_grad():
            sim.step(xs[0], xs[1], C, F, tau)

    def bridge_fwdbwd():
        out = sim.step(xs[0], xs[1], C, F, tau)
        out[0].sum().backward()

    bf, _ = _median_seconds(bridge_fwd, reps, inner)
    bfb, _ = _median_seconds(bridge_fwdbwd, reps, inner)
    print(f"bridge step {bf * 1e3:.2f} ms, step+backward {bfb * 1e3:.2f} ms")
    result = {
        "device": args.device,
        "particles": n,
        "grid": args.res,
        "threads": threads,
        "fwd_particle_substeps_per_s_20k": n / fwd,
        "fwdbwd_particle_substeps_per_s_20k": n / (fwd + bwd),
        "fwd_particle_substeps_per_s_20k_1thread": n / fwd1,
        "fwdbwd_particle_substeps_per_s_20k_1thread": n / (fwd1 + bwd1),
        "fwd_per_cpu_second_20k": n / fwd_cpu,
        "fwdbwd_per_cpu_second_20k": n / (fwd_cpu + bwd_cpu),
        "bridge_fwd_particle_substeps_per_s_20k": n / bf,
        "bridge_fwdbwd_particle_substeps_per_s_20k": n / bfb,
        "goal_fwd": 8e6,
        "goal_fwdbwd": 1.6e6,
        "quick": args.quick,
        "load_average_1min_at_start": load,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
