"""Online feature normalizer kept inside the model (and so inside its checkpoints).

Statistics are running sums (float64 buffers), as in the published MeshGraphNets/HCMT code, with two fixes:
the variance is clamped at zero before the square root (the published one returns NaN when rounding makes it
negative) and accumulation stops after `max_accumulations` calls, so late training sees fixed statistics.
"""

from __future__ import annotations

import torch
from torch import nn


class Normalizer(nn.Module):
    """`(x - mean) / std` per feature, statistics accumulated from the data it sees while training.

    >>> norm = Normalizer(3)
    >>> y = norm(torch.randn(100, 3), accumulate=True)   # training: update statistics, then normalize
    >>> x = norm.inverse(y)                              # back to physical units
    """

    def __init__(self, size: int, max_accumulations: int = 10**6, std_epsilon: float = 1e-8):
        super().__init__()
        self.size = size
        self.max_accumulations = max_accumulations
        self.std_epsilon = std_epsilon
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("accumulations", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sum", torch.zeros(size, dtype=torch.float64))
        self.register_buffer("sum_squared", torch.zeros(size, dtype=torch.float64))

    @torch.no_grad()
    def accumulate(self, x: torch.Tensor) -> None:
        """Add the rows of `x` [n, size] to the statistics (ignored in eval mode or past max_accumulations)."""
        if not self.training or self.accumulations >= self.max_accumulations or x.shape[0] == 0:
            return
        x = x.detach().reshape(-1, self.size).to(torch.float64)
        self.sum += x.sum(0)
        self.sum_squared += (x * x).sum(0)
        self.count += x.shape[0]
        self.accumulations += 1

    def mean(self) -> torch.Tensor:
        return self.sum / self.count.clamp(min=1.0)

    def std(self) -> torch.Tensor:
        """Standard deviation, floored at std_epsilon; 1 before any statistics (the identity map, not 1e8x)."""
        mean = self.mean()
        variance = (self.sum_squared / self.count.clamp(min=1.0) - mean * mean).clamp(min=0.0)
        std = variance.sqrt().clamp(min=self.std_epsilon)
        return torch.where(self.count > 0, std, torch.ones_like(std))

    def forward(self, x: torch.Tensor, accumulate: bool = False) -> torch.Tensor:
        if accumulate:
            self.accumulate(x)
        mean, std = self.mean().to(x.dtype), self.std().to(x.dtype)
        return (x - mean) / std

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.std().to(y.dtype) + self.mean().to(y.dtype)

    def extra_repr(self) -> str:
        return f"size={self.size}, max_accumulations={self.max_accumulations}, std_epsilon={self.std_epsilon}"


class GroupedNormalizer(nn.Module):
    """One `Normalizer` per group of rows (e.g. per node type): rows of group g use group g's statistics.

    For targets whose scale differs by group, so that each group's errors weigh alike in a normalized loss.

    >>> norm = GroupedNormalizer(2, groups=2)
    >>> y = norm(torch.randn(100, 2), torch.randint(2, (100,)), accumulate=True)
    """

    def __init__(self, size: int, groups: int):
        super().__init__()
        self.size = size
        self.groups = nn.ModuleList(Normalizer(size) for _ in range(groups))

    def _stats(self, group: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.stack([g.mean() for g in self.groups]).to(dtype)
        std = torch.stack([g.std() for g in self.groups]).to(dtype)
        return mean[group], std[group]

    def forward(self, x: torch.Tensor, group: torch.Tensor, accumulate: bool = False) -> torch.Tensor:
        if accumulate:
            for g, norm in enumerate(self.groups):
                norm.accumulate(x[group == g])
        mean, std = self._stats(group, x.dtype)
        return (x - mean) / std

    def inverse(self, y: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(group, y.dtype)
        return y * std + mean
