"""Fill a trajectory store with simulated trajectories of one scenario, in parallel and resumably.

    summary = generate("impact-plate-2d", num=120, out="impact.h5", workers=2, seed=0)

Trajectory `i` has id f"{i:05d}" and its own seed derived from (seed, i), so the store does not depend on the
number of workers, on the order in which trajectories finish, or on interruptions: re-running the same command
skips the finished ids and produces the same file content as an uninterrupted run. `shard=(i, n)` keeps the ids
with index % n == i; under `torchrun` (WORLD_SIZE > 1) each rank takes its own shard and writes
`<out stem>.rank<r>of<n><suffix>`. Workers simulate; only the parent process writes, one atomic write per
trajectory.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from meshsim.config import to_dict
from meshsim.errors import ConfigError, OutputError
from meshsim.scenarios.base import get_scenario


def trajectory_seed(seed: int, index: int) -> int:
    """Independent, reproducible seed of trajectory `index` in a run with base `seed`."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int]:
    if shard is None:
        return 0, 1
    if isinstance(shard, str):
        left, sep, right = shard.partition("/")
        if not sep or not left.isdigit() or not right.isdigit():
            raise ConfigError(f"shard {shard!r} must look like i/n, e.g. 0/4")
        shard = (int(left), int(right))
    i, n = shard
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"shard {i}/{n} needs n >= 1 and 0 <= i < n")
    return int(i), int(n)


def _distributed_shard() -> tuple[int, int] | None:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return (int(os.environ.get("RANK", "0")), world) if world > 1 else None


def ignore_sigint() -> None:
    """Pool initializer: workers leave Ctrl-C to the parent, which stops them (no traceback from each worker)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _simulate_one(job):
    name, overrides, config_path, index, seed = job
    scenario = get_scenario(name)
    cfg = scenario.make_config(overrides, config_path)
    t0 = time.perf_counter()
    traj = scenario.simulate(cfg, trajectory_seed(seed, index))
    return index, traj, time.perf_counter() - t0


def generate(
    name: str,
    num: int,
    out: str | os.PathLike,
    workers: int = 1,
    seed: int = 0,
    shard: str | tuple[int, int] | None = None,
    overrides: Sequence[str] = (),
    config_path: str | os.PathLike | None = None,
    progress: bool | None = None,
) -> dict:
    """Simulate trajectories 0..num-1 of scenario `name` (this shard's part) into the store `out`."""
    scenario = get_scenario(name)
    cfg = scenario.make_config(overrides, config_path)  # validate once, before any process starts
    if num < 1:
        raise ConfigError(f"--num must be >= 1, got {num}")
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    out = Path(out)
    dist = _distributed_shard()
    if dist is not None:
        if shard is not None:
            raise ConfigError("--shard cannot be combined with torchrun: each rank already takes its own shard")
        shard = dist
        out = out.with_name(f"{out.stem}.rank{dist[0]}of{dist[1]}{out.suffix}")
    part, parts = parse_shard(shard)
    settings = {"scenario": name, "seed": int(seed), "config": yaml.safe_dump(to_dict(cfg), sort_keys=True)}

    from meshsim.datasets import TrajectoryFile, TrajectoryWriter

    if out.exists():
        with TrajectoryFile(out) as existing:
            for key, value in settings.items():
                if existing.attrs.get(key) != value:
                    raise OutputError(f"{out} was generated with another {key} ({existing.attrs.get(key)!r:.60}); "
                                      "rerun with the same settings to resume it, or write a new --out file")
    writer = TrajectoryWriter(out, attrs=settings)
    done = set(writer.ids)
    todo = [i for i in range(num) if i % parts == part and f"{i:05d}" not in done]
    jobs = [(name, list(overrides), None if config_path is None else str(config_path), i, int(seed)) for i in todo]
    t0 = time.perf_counter()
    sim_seconds = 0.0
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=len(jobs), desc=f"{name} -> {out.name}", unit="traj", disable=not show)
    with writer:
        if workers == 1 or len(jobs) <= 1:
            results = map(_simulate_one, jobs)
            pool = None
        else:
            # spawn: workers start clean (no inherited Warp/torch state); kernels load from the shared cache.
            # Workers ignore Ctrl-C (a terminal sends it to the whole group): the parent alone stops, saying so in
            # one line, and terminates them; no worker prints a KeyboardInterrupt traceback.
            pool = multiprocessing.get_context("spawn").Pool(min(workers, len(jobs)), initializer=ignore_sigint)
            results = pool.imap_unordered(_simulate_one, jobs)
        try:
            for index, traj, seconds in results:
                writer.write(f"{index:05d}", traj)
                sim_seconds += seconds
                bar.update(1)
        finally:
            bar.close()
            if pool is not None:
                pool.terminate()
                pool.join()
    return {
        "out": str(out), "scenario": name, "written": len(jobs), "skipped": len(done & {f"{i:05d}" for i in
                                                                                        range(num)}),
        "total_in_file": len(done) + len(jobs), "seconds": time.perf_counter() - t0,
        "simulation_seconds": sim_seconds,
    }
