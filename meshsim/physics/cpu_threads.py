"""Run pre-built Warp CPU launches on several cores.

Warp runs a CPU kernel on one thread, but a launch is a ctypes call that releases the GIL, so launches over
disjoint index ranges run in parallel from Python threads. Callers split their work into ranges (`ranges`),
record one launch per range, and hand each thread its list of launches (`run`). Launches that would scatter
into the same array need one copy of it per range, summed afterwards (`add_kernel`): results then depend on
the number of ranges (float sums in another order) but not on timing, so a run repeats bit for bit on the
same machine.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import warp as wp

MIN_PER_THREAD = 2048  # items of a kernel worth a thread: waking one costs ~80 us on a 2-core VM

_pool: ThreadPoolExecutor | None = None
_pool_pid = -1


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def ranges(n: int, threads: int, min_per_thread: int | None = None) -> list[tuple[int, int]]:
    """Split [0, n) into at most `threads` contiguous ranges of at least `min_per_thread` (default
    `MIN_PER_THREAD`) items each; always at least one range."""
    least = MIN_PER_THREAD if min_per_thread is None else min_per_thread
    k = max(1, min(threads, n // max(least, 1)))
    bounds = [n * i // k for i in range(k + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _executor(workers: int) -> ThreadPoolExecutor:
    """One pool per process (a forked child gets a fresh one: threads do not survive fork)."""
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid() or _pool._max_workers < workers:
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="meshsim-warp")
        _pool_pid = os.getpid()
    return _pool


def run(groups: list[list[Any]]) -> None:
    """Launch each group's launches in order, the groups in parallel (group 0 on the calling thread)."""
    if len(groups) == 1:
        for launch in groups[0]:
            launch.launch()
        return
    pending = [_executor(len(groups) - 1).submit(_run_group, g) for g in groups[1:]]
    _run_group(groups[0])
    for future in pending:
        future.result()  # re-raises a worker's exception here


def _run_group(group: list[Any]) -> None:
    for launch in group:
        launch.launch()


@wp.kernel
def add_kernel(dst: wp.array(dtype=Any), src: wp.array(dtype=Any)):
    """dst += src, element by element (flat arrays of one dtype)."""
    t = wp.tid()
    dst[t] = dst[t] + src[t]
