"""Time of `meshsim data import-series` for a 400-frame, 20k-node series (issue 21 goal: under 30 s).

    python benchmarks/import_series.py [--quick]

A tetrahedral box of 27^3 = 19,683 nodes (105,456 tets) moves for 400 frames with a stress field; it is written
to a meshsim store and exported with meshsim's own exporters (pvd + one .vtu per frame, XDMF + .h5, temporal
VTKHDF), then each is imported back: the .pvd, the folder of .vtu files (--dt), the .xdmf and the .vtkhdf. Only
the imports are timed; each imported store is checked against the original arrays. --quick: 11^3 nodes, 40
frames. The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from meshsim.viewer.export import export_trajectory

from meshsim.datasets import Trajectory, TrajectoryFile, TrajectoryWriter
from meshsim.datasets.series import import_series
from meshsim.mesh import primitives

GOAL_SECONDS = 30.0


def make(resolution: int, frames: int) -> Trajectory:
    mesh = primitives.box((1.0, 1.0, 1.0), (resolution,) * 3)
    pos = mesh.points.astype(np.float32)
    rng = np.random.default_rng(0)
    wave = np.sin(np.linspace(0, 4 * np.pi, frames, dtype=np.float32))[:, None, None]
    world = pos[None] + 0.01 * wave * pos[None, :, ::-1] + rng.normal(0, 1e-4, (frames, *pos.shape)).astype(np.float32)
    world[0] = pos
    return Trajectory(
        cells=mesh.cells.astype(np.int32),
        mesh_pos=pos,
        node_type=np.where(pos[:, 2] <= 0, 3, 0).astype(np.int32),
        world_pos=world.astype(np.float32),
        dt=1e-3,
        fields={"stress": rng.random((frames, len(pos))).astype(np.float32)},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    resolution, frames = (10, 40) if args.quick else (26, 400)
    load = os.getloadavg()[0]
    traj = make(resolution, frames)
    result = {
        "benchmark": "import_series",
        "quick": args.quick,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_1min_at_start": round(load, 2),
        "nodes": traj.num_nodes,
        "cells": traj.num_cells,
        "frames": frames,
        "goal_seconds": GOAL_SECONDS,
        "import_seconds": {},
    }
    with tempfile.TemporaryDirectory(dir=".") as folder:
        folder = Path(folder)
        with TrajectoryWriter(folder / "src.h5") as w:
            w.write("00000", traj)
        start = time.perf_counter()
        sources = {}
        for fmt in ("pvd", "xdmf", "vtkhdf"):
            sources[fmt] = export_trajectory(folder / "src.h5", fmt)[0]
        sources["vtu-folder"] = str(folder / "src-00000")
        result["export_seconds_all"] = round(time.perf_counter() - start, 2)
        for name, source in sources.items():
            out = folder / f"back-{name}.h5"
            start = time.perf_counter()
            import_series([source], out, dt=traj.dt if name == "vtu-folder" else None)
            seconds = time.perf_counter() - start
            with TrajectoryFile(out) as f:
                back = f.read("00000")
            exact = all(np.array_equal(getattr(traj, n), getattr(back, n)) for n in ("cells", "mesh_pos", "world_pos"))
            exact = exact and np.array_equal(traj.fields["stress"], back.fields["stress"])
            result["import_seconds"][name] = {"seconds": round(seconds, 2), "exact": bool(exact)}
            print(f"{name:<11} {seconds:7.2f} s  exact={exact}", flush=True)
            out.unlink()
    slowest = max(v["seconds"] for v in result["import_seconds"].values())
    result["slowest_import_seconds"] = slowest
    result["goal_met"] = bool(slowest < GOAL_SECONDS) if not args.quick else None
    result["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
