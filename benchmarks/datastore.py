"""Cost of the atomic trajectory store: one write (swap catch-up + append + fsync + rename) as the store
grows, batched writes, full reads, single-frame reads and FrameWindowDataset throughput.

    python benchmarks/datastore.py [--quick]

Trajectories are DeformingPlate-sized (1271 nodes, 3D, world_pos + stress; 400 frames, 100 with --quick).
The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from meshsim.datasets import FrameWindowDataset, Trajectory, TrajectoryFile, TrajectoryWriter


def make(seed: int, frames: int, nodes: int = 1271) -> Trajectory:
    rng = np.random.default_rng(seed)
    return Trajectory(
        cells=rng.integers(0, nodes, (4 * nodes, 4)).astype(np.int32),
        mesh_pos=rng.random((nodes, 3)).astype(np.float32),
        node_type=np.zeros(nodes, np.int32),
        world_pos=rng.random((frames, nodes, 3)).astype(np.float32),
        dt=0.01,
        fields={"stress": rng.random((frames, nodes)).astype(np.float32)},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    frames, count = (100, 8) if args.quick else (400, 16)
    trajs = [make(i, frames) for i in range(count)]
    mb_per_traj = (trajs[0].world_pos.nbytes + trajs[0].fields["stress"].nbytes) / 1e6
    with tempfile.TemporaryDirectory(dir=".") as folder:
        path = Path(folder) / "bench.h5"
        single = []
        with TrajectoryWriter(path) as w:
            for i, traj in enumerate(trajs):
                start = time.perf_counter()
                w.write(f"{i:05d}", traj)
                single.append(time.perf_counter() - start)
            full_copies = w.full_copies
        store_mb = path.stat().st_size / 1e6
        batch_path = Path(folder) / "batch.h5"
        start = time.perf_counter()
        with TrajectoryWriter(batch_path) as w, w.batch():
            for i, traj in enumerate(trajs):
                w.write(f"{i:05d}", traj)
        batch_time = time.perf_counter() - start
        with TrajectoryFile(path) as f:
            start = time.perf_counter()
            for traj_id in f.ids:
                f.read(traj_id)
            read_time = (time.perf_counter() - start) / count
            start = time.perf_counter()
            for t in range(frames):
                f.frame("00000", t)
            frame_ms = 1e3 * (time.perf_counter() - start) / frames
        ds = FrameWindowDataset([path], history=1, horizon=1)
        picks = np.random.default_rng(0).integers(0, len(ds), 200)
        start = time.perf_counter()
        for i in picks:
            ds[int(i)]
        window_ms = 1e3 * (time.perf_counter() - start) / len(picks)
    print(f"trajectory {mb_per_traj:.1f} MB; store {store_mb:.0f} MB after {count} writes")
    print("single write seconds as the store grows:", " ".join(f"{s:.3f}" for s in single))
    print(json.dumps({
        "trajectory_mb": round(mb_per_traj, 2),
        "store_mb": round(store_mb, 1),
        "write_s_first": round(single[0], 4),
        "write_s_last": round(single[-1], 4),
        "write_mb_per_s_last": round(mb_per_traj / single[-1], 1),
        "full_store_copies": full_copies,
        "batch_write_s_per_trajectory": round(batch_time / count, 4),
        "read_trajectory_s": round(read_time, 4),
        "read_frame_ms": round(frame_ms, 3),
        "random_window_ms": round(window_ms, 3),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
