"""Warp set-up shared by the kernels: quiet one-time init, zero-copy launches on torch tensors, and
parallel CPU launches.

Warp runs a CPU launch on one thread and releases the GIL while it runs, so launches over disjoint ranges of
threads run in parallel from Python threads (`run_parallel`): `launch_many` uses as many as torch has CPU
threads at the call, and the MPM solver as many as it had when the solver was built (or its `threads`).
"""

from __future__ import annotations

import ctypes
import os
import sys
from concurrent.futures import ThreadPoolExecutor, wait
from functools import partial

import torch
import warp as wp

_initialised = False
_pool: ThreadPoolExecutor | None = None
_pool_pid = -1


def init_warp() -> None:
    """Initialise Warp once for the whole package (kernels and physics): no banner, no per-module messages, and
    no native "CUDA driver not found" warning on machines without an NVIDIA driver, where it is expected."""
    global _initialised
    if _initialised:
        return
    wp.config.quiet = True
    wp.config.log_level = max(wp.config.log_level, wp.LOG_WARNING)  # no banner, no per-module load lines
    if sys.platform.startswith("linux") and not _has_cuda_driver():
        _without_stderr(wp.init)
    else:
        wp.init()
    _initialised = True


_init = init_warp


def _has_cuda_driver() -> bool:
    try:
        ctypes.CDLL("libcuda.so")  # the library Warp itself loads
    except OSError:
        return False
    return True


def _without_stderr(fn) -> None:
    # The warning comes from Warp's native code, so only redirecting file descriptor 2 silences it.
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            fn()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def as_warp(x, dtype=None):
    """A torch tensor as a Warp array (ctype, no copy); `dtype` a Warp vector type views the last dim as it."""
    _init()
    return wp.from_torch(x.detach(), dtype=dtype, requires_grad=False, return_ctype=True)


def warp_array(x, dtype=None):
    """A torch tensor as a `wp.array` (no copy): what a Warp struct's array field takes (not a ctype)."""
    _init()
    return wp.from_torch(x.detach(), dtype=dtype, requires_grad=False)


def launch(kernel, dim, inputs: list, device: torch.device) -> None:
    """Run `kernel` over `dim` threads; tensors are wrapped without copies, other inputs passed as they are.

    On CUDA the launch goes on torch's current stream, so it is ordered with the surrounding torch ops.
    """
    _init()
    args = [as_warp(x) if isinstance(x, torch.Tensor) else x for x in inputs]
    if device.type == "cuda":
        stream = wp.stream_from_torch(device)
        wp.launch(kernel, dim=dim, inputs=args, device=stream.device, stream=stream)
    else:
        wp.launch(kernel, dim=dim, inputs=args, device="cpu")


def split_range(n: int, parts: int) -> list[tuple[int, int]]:
    """[(first, count)]: n items cut into `parts` contiguous ranges of about equal size (none empty)."""
    cuts = [n * p // parts for p in range(parts + 1)]
    return [(a, b - a) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def run_parallel(tasks: list) -> None:
    """Call the callables `tasks` at the same time, the first on this thread, and return when all have finished
    (also when one fails: no task is still writing when the caller sees the first task's exception).

    Thread hand-offs cost tens of microseconds (~80 us measured on a 2-core VM), so tasks should be larger.
    """
    if len(tasks) == 1:
        tasks[0]()
        return
    pending = [_executor(len(tasks) - 1).submit(task) for task in tasks[1:]]
    try:
        tasks[0]()
    finally:
        wait(pending)
    for job in pending:
        job.result()


def _executor(workers: int) -> ThreadPoolExecutor:
    """One pool per process, grown on demand (a forked child gets its own: threads do not survive fork)."""
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid() or _pool._max_workers < workers:
        if _pool is not None and _pool_pid == os.getpid():
            _pool.shutdown(wait=False)  # a larger pool replaces it: let its idle threads exit
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="meshsim-warp")
        _pool_pid = os.getpid()
    return _pool


def cpu_workers(device: torch.device, work: int, min_work: int, load_aware: bool = False) -> int:
    """How many parallel ranges to cut `work` into: torch's CPU thread count, 1 on CUDA or for small work.

    `load_aware` (only for ops whose result does not depend on the split): one range when the machine's
    load average already fills its cores, since a range waiting for a time slice stalls the whole launch.
    """
    if device.type != "cpu":
        return 1
    workers = max(1, min(torch.get_num_threads(), work // max(min_work, 1)))
    if load_aware and workers > 1:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):  # not on every platform
            busy = 0.0
        if busy > (os.cpu_count() or 1) - 0.5:
            workers = 1
    return workers


def launch_many(kernel, jobs: list, device: torch.device) -> None:
    """Run the launches `jobs = [(dim, inputs), ...]` at the same time (their writes must not overlap)."""
    if len(jobs) == 1:
        launch(kernel, jobs[0][0], jobs[0][1], device)
        return
    _init()
    # Compile or load once, before the threads start, with the block size wp.launch uses (part of the
    # module hash: another value would compile a second copy).
    kernel.module.load(wp.device_from_torch(device), 1 if device.type == "cpu" else 256)
    run_parallel([partial(launch, kernel, dim, inputs, device) for dim, inputs in jobs])
