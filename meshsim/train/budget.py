"""Training budgets: wall-clock and CPU time of a run (the CPU time summed over resumes), and how much is spent."""

from __future__ import annotations

import time

import torch
import torch.distributed as dist

from meshsim.train import distributed as D
from meshsim.train.config import TrainConfig


class Clock:
    """Wall-clock time of this run and CPU time of this process, the latter summed over resumed runs."""

    def __init__(self, cpu_before: float = 0.0):
        self.wall0, self.cpu0, self.cpu_before = time.perf_counter(), time.process_time(), cpu_before

    def wall_seconds(self) -> float:
        return time.perf_counter() - self.wall0

    def cpu_seconds(self) -> float:
        return self.cpu_before + time.process_time() - self.cpu0


def budget_spent(cfg: TrainConfig, clock: Clock, env: D.DistEnv) -> float:
    """Fraction of the budget spent so far (the larger of wall-clock and CPU), by rank 0's clocks (every rank uses
    the same rate)."""
    fractions = [0.0]
    if cfg.time_limit_minutes:
        fractions.append(clock.wall_seconds() / (60.0 * cfg.time_limit_minutes))
    if cfg.cpu_limit_minutes:
        fractions.append(clock.cpu_seconds() / (60.0 * cfg.cpu_limit_minutes))
    spent = torch.tensor([max(fractions)], dtype=torch.float64)
    if env.distributed:
        spent = spent.to(env.device)
        dist.broadcast(spent, src=0)
    return float(spent.item())


def out_of_time(cfg: TrainConfig, clock: Clock, env: D.DistEnv) -> bool:
    """Whether the wall-clock or CPU budget is spent; rank 0's clocks decide for every rank."""
    return bool(cfg.time_limit_minutes or cfg.cpu_limit_minutes) and budget_spent(cfg, clock, env) > 1.0
