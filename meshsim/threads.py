"""CPU threads for torch: a deliberate count, and a watch that says when a busy machine collapses throughput.

torch's OpenMP threads meet at a barrier after every op. When another process holds one of the cores, each op
waits for the descheduled thread: an HCMT step (hundreds of small ops) fell from ~700 to ~48 training steps per
minute with 2 threads beside a busy neighbour, while one thread held its speed. So the automatic choice counts
the cores that other processes leave free (load average), and small graphs, whose ops are too short to share,
get one thread.

    from meshsim.threads import set_threads
    n = set_threads(0)          # 0 = automatic; n >= 1 = exactly n
"""

from __future__ import annotations

import os
import statistics
import sys

from meshsim.errors import ConfigError

# Below this many nodes per step an HCMT/MGN op takes microseconds and a second thread mostly waits
# (benchmarks/threads.py measures the ratio on the machine at hand).
SMALL_GRAPH_NODES = 4000


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def free_cores() -> int:
    """Cores not taken by other processes: available cores minus the 1-minute load average, at least 1."""
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return max(1, available_cores() - int(round(busy)))


def choose_threads(requested: int = 0, nodes: int | None = None, processes: int = 1) -> int:
    """`requested` >= 1: that many. 0 (automatic): the free cores shared among `processes`, and 1 for graphs
    smaller than SMALL_GRAPH_NODES."""
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 0:
        raise ConfigError(f"threads must be an integer >= 0 (0 = automatic), got {requested!r}")
    if requested:
        return requested
    if nodes is not None and nodes < SMALL_GRAPH_NODES:
        return 1
    return max(1, free_cores() // max(1, processes))


def set_threads(requested: int = 0, nodes: int | None = None, processes: int = 1) -> int:
    """Set torch's intra-op threads to `choose_threads(...)` and return the count."""
    import torch

    n = choose_threads(requested, nodes, processes)
    torch.set_num_threads(n)
    return n


class ThroughputWatch:
    """Warns once, in one line on stderr, when the median step time of a window of steps is `factor` times that
    of the fastest window so far (the sign of threads waiting on a process that took their core)."""

    def __init__(self, window: int = 20, factor: float = 3.0, what: str = "training"):
        self.window, self.factor, self.what = window, factor, what
        self._times: list[float] = []
        self._best: float | None = None
        self.warned = False

    def add(self, seconds: float) -> str | None:
        """Record one step; return (and print) the warning the first time throughput collapses."""
        self._times.append(seconds)
        if len(self._times) < self.window:
            return None
        median = statistics.median(self._times)
        self._times.clear()
        if self._best is None or median < self._best:
            self._best = median
            return None
        if self.warned or median < self.factor * self._best:
            return None
        self.warned = True
        import torch

        try:
            load = f"{os.getloadavg()[0]:.1f}"
        except OSError:
            load = "?"
        threads = torch.get_num_threads()
        fix = "free the cores" if threads == 1 else "use --threads 1 (threads=1) or free the cores"
        message = (f"meshsim: warning: {self.what} slowed {median / self._best:.1f}x ({self._best * 1e3:.0f} -> "
                   f"{median * 1e3:.0f} ms/step; load average {load} on {available_cores()} cores, "
                   f"{threads} torch threads): another process competes for the cores; {fix}")
        print(message, file=sys.stderr, flush=True)
        return message
