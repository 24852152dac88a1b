"""FEM throughput: element-substeps per second of the whole explicit substep, and impact-plate generation speed.

    python benchmarks/fem.py [--quick] [--dataset]

Whole substep = zeroing the force accumulators + element forces (stable Neo-Hookean) + node update (contact with a
rigid plane, integration, constraints) + rigid-body update, launched through pre-recorded Warp commands. The
profile breaks the substep into its parts. `--dataset` also times generating the benchmark-size impact-plate
dataset (100 train + 20 test trajectories, 2 workers); otherwise that time is extrapolated from measured
benchmark-size trajectories (said so in the JSON). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import warp as wp

from meshsim.mesh import box, rectangle
from meshsim.physics.fem import FemSolver
from meshsim.physics.fem_model import FemModel
from meshsim.physics.obstacles import RigidBody


def _solver(dim: int, n: int):
    if dim == 3:
        mesh = box((1.0, 1.0, 0.25), (n, n, max(1, n // 4)))
        floor = RigidBody("plane", (0.0, 0.0, -0.01), normal=(0.0, 0.0, 1.0), stiffness=1e7)
        g = (0.0, 0.0, -9.81)
    else:
        mesh = rectangle((1.0, 0.25), (n, max(1, n // 4)))
        floor = RigidBody("plane", (0.0, -0.01), normal=(0.0, 1.0), stiffness=1e7)
        g = (0.0, -9.81)
    return FemSolver(FemModel.build(mesh.points, mesh.cells, density=1000.0, youngs_modulus=1e6, poisson_ratio=0.3,
                                    material="neohookean", gravity=g, obstacles=[floor],
                                    velocity=np.r_[0.0, 0.0, -1.0][-dim:]))


def _time(fn, repeat: int) -> float:
    fn()
    wp.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    wp.synchronize()
    return (time.perf_counter() - t0) / repeat


def substep_rate(dim: int, n: int, substeps: int) -> dict:
    solver = _solver(dim, n)
    model = solver.model
    dt = model.stable_dt
    a, b, control, forces = model.state(), model.state(), model.control(), model.forces()
    cmds = [solver.step(a, b, control, forces, dt, record=True), solver.step(b, a, control, forces, dt, record=True)]

    def whole():
        for k in range(substeps):
            forces.zero()
            for c in cmds[k % 2]:
                c.launch()

    t_whole = _time(whole, 1) / substeps
    parts = {
        "zero": _time(forces.zero, 50),
        "element_forces": _time(cmds[0][0].launch, 20),
        "nodes": _time(cmds[0][1].launch, 20),
        "bodies": _time(cmds[0][2].launch, 50),
    }
    m = len(model.cells)
    return {"dim": dim, "elements": m, "nodes": len(model.points), "substep_ms": 1e3 * t_whole,
            "elem_substeps_per_s": m / t_whole, "bare_force_kernel_elem_per_s": m / parts["element_forces"],
            "profile_ms": {k: round(1e3 * v, 4) for k, v in parts.items()}}


def impact_plate(num: int, preset: str) -> dict:
    from meshsim.scenarios import get_scenario

    scenario = get_scenario("impact-plate-2d")
    cfg = scenario.make_config([f"preset={preset}"])
    scenario.simulate(scenario.make_config(["num_frames=2"]), 0)  # compile / load kernels
    t0 = time.perf_counter()
    frames = 0
    for seed in range(num):
        frames += scenario.simulate(cfg, 1000 + seed).num_frames - 1
    seconds = time.perf_counter() - t0
    return {"trajectories": num, "preset": preset, "seconds_per_trajectory": seconds / num,
            "frames_per_s": frames / seconds}


def dataset_time(workers: int) -> float:
    from meshsim.scenarios import generate

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate("impact-plate-2d", 100, os.path.join(tmp, "train.h5"), workers=workers, seed=0,
                 overrides=["preset=benchmark"], progress=False)
        generate("impact-plate-2d", 20, os.path.join(tmp, "test.h5"), workers=workers, seed=1,
                 overrides=["preset=benchmark"], progress=False)
        return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    ap.add_argument("--dataset", action="store_true", help="really generate the 120-trajectory benchmark dataset")
    ap.add_argument("--device", default=None, help="Warp device, e.g. cpu or cuda:0 (default: Warp's preferred)")
    args = ap.parse_args(argv)
    wp.config.log_level = 30
    wp.init()
    if args.device:
        wp.set_device(args.device)  # solvers built without a device use the preferred one
    tet_sizes = [8] if args.quick else [16, 32, 48]
    tri_sizes = [40] if args.quick else [100, 300, 600]
    steps = 20 if args.quick else 100
    out: dict = {"device": str(wp.get_preferred_device()), "quick": args.quick, "runs": []}
    for dim, sizes in ((3, tet_sizes), (2, tri_sizes)):
        for n in sizes:
            r = substep_rate(dim, n, steps)
            out["runs"].append(r)
            print(json.dumps(r), file=sys.stderr)
    tets = [r for r in out["runs"] if r["dim"] == 3]
    tris = [r for r in out["runs"] if r["dim"] == 2]
    out["tet_elem_substeps_per_s"] = tets[-1]["elem_substeps_per_s"]
    out["tri_elem_substeps_per_s"] = tris[-1]["elem_substeps_per_s"]
    out["tet_bare_force_kernel_elem_per_s"] = tets[-1]["bare_force_kernel_elem_per_s"]
    ip = impact_plate(1 if args.quick else 3, "small" if args.quick else "benchmark")
    out["impact_plate"] = ip
    out["impact_plate_frames_per_s"] = ip["frames_per_s"]
    if not args.quick:
        workers = 2
        if args.dataset:
            out["impact_plate_dataset_120_seconds"] = dataset_time(workers)
            out["impact_plate_dataset_120_measured"] = True
        else:
            # Extrapolated: 120 trajectories at the measured single-process speed, split over the workers.
            out["impact_plate_dataset_120_seconds"] = 120 * ip["seconds_per_trajectory"] / workers
            out["impact_plate_dataset_120_measured"] = False
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
