"""Helpers shared by the benchmark scripts (imported as `common`: a script's own folder is first on sys.path).

- `simulate(name, overrides)`: one scenario trajectory from the project's Warp FEM solver, timed, kernels compiled
  beforehand: the whole call, and the solver's own frame loop (`FemSolver.simulate`) without the mesh building,
  solver set-up and trajectory assembly around it.
- `PeakRSS`: the process's resident-memory high-water mark over a block (Linux VmHWM, reset on entry).
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from pathlib import Path

_COMPILED: set[str] = set()


@contextmanager
def _timing_solver(seconds: list):
    """Record the wall time of every FemSolver.simulate call made inside the block (the solver's frame loop)."""
    from meshsim.physics.fem import FemSolver

    original = FemSolver.simulate

    def timed(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - start)

    FemSolver.simulate = timed
    try:
        yield
    finally:
        FemSolver.simulate = original


def simulate(name: str, overrides=(), seed: int = 0, clock=time.perf_counter):
    """(trajectory, timing) of one `name` scenario run with `overrides`. timing: `total_s` (the whole
    scenario.simulate call), `solver_s` (the solver's frame loop only), `intervals` (frames - 1), `frame_s` =
    total_s / intervals and `solver_frame_s` = solver_s / intervals. The scenario's kernels are compiled (or loaded
    from Warp's cache) by a two-frame run first, untimed."""
    from meshsim.scenarios import get_scenario

    scenario = get_scenario(name)
    if name not in _COMPILED:
        scenario.simulate(scenario.make_config(["num_frames=2"]), seed)
        _COMPILED.add(name)
    cfg = scenario.make_config(list(overrides))
    loops: list[float] = []
    with _timing_solver(loops):
        start = clock()
        traj = scenario.simulate(cfg, seed)
        total = clock() - start
    intervals = traj.world_pos.shape[0] - 1
    solver = sum(loops)
    return traj, {"total_s": total, "solver_s": solver, "intervals": intervals, "frame_s": total / intervals,
                  "solver_frame_s": solver / intervals}


class PeakRSS:
    """Peak resident memory of this process inside a `with` block, in MiB (`peak_mib`; `before_mib` on entry).
    Linux: VmHWM from /proc/self/status, reset on entry by writing 5 to /proc/self/clear_refs. Elsewhere (or when
    the reset is refused) the process's lifetime maximum (getrusage), said so in `method`."""

    STATUS = Path("/proc/self/status")

    def __enter__(self):
        self.method = "VmHWM reset per block"
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.method = "ru_maxrss (process lifetime peak; not reset per block)"
        self.before_mib = self._field("VmRSS")
        return self

    def __exit__(self, *exc):
        if self.method.startswith("VmHWM"):
            self.peak_mib = self._field("VmHWM")
        else:
            import resource

            self.peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return False

    def _field(self, key: str) -> float | None:
        try:
            match = re.search(rf"^{key}:\s+(\d+) kB", self.STATUS.read_text(), re.M)
        except OSError:
            return None
        return int(match.group(1)) / 1024 if match else None
