"""Training recipe for the learned mesh simulators (HCMT, MGN): `meshsim train CONFIG.yaml [key=value ...]`.

    from meshsim.config import load_config
    from meshsim.train.config import TrainConfig
    cfg = load_config(TrainConfig, "data/train_hcmt_impact_plate.yaml", ["optim.lr=3e-4", "steps=2000"])

Step counting: `steps` counts every optimisation step including the first `warmup_steps`, which only feed the
online normalizers (no gradient, as the published code does for its first 1000 steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from meshsim.errors import ConfigError
from meshsim.models import ModelConfig


@dataclass
class OptimConfig:
    """Adam with exponential decay: lr(step) = max(lr * decay_rate ** (step / decay_steps), min_lr).

    With `over_budget` (and a run's `time_limit_minutes` or `cpu_limit_minutes`), the exponent is the spent
    fraction of the budget (the larger of the two) instead of step / decay_steps: the rate falls by `decay_rate`
    over the budget, however many steps fit.
    """

    lr: float = 1e-4
    decay_rate: float = 0.1
    decay_steps: int = 1_000_000
    min_lr: float = 0.0  # floor; 0 = none (the published schedule has none)
    over_budget: bool = False  # decay over time_limit_minutes instead of decay_steps

    def __post_init__(self) -> None:
        _positive("optim.lr", self.lr)
        if not 0.0 < self.decay_rate <= 1.0:
            raise ConfigError(f"optim.decay_rate must be in (0, 1], got {self.decay_rate}")
        _positive("optim.decay_steps", self.decay_steps)
        if self.min_lr < 0 or self.min_lr > self.lr:
            raise ConfigError(f"optim.min_lr must be in [0, optim.lr={self.lr}], got {self.min_lr}")

    def lr_factor(self, step: int, budget_spent: float | None = None) -> float:
        """Multiplier of `lr` after `step` optimisation steps (`over_budget`: after `budget_spent` in [0, 1])."""
        progress = min(budget_spent, 1.0) if self.over_budget and budget_spent is not None else step / self.decay_steps
        return max(self.decay_rate ** progress, self.min_lr / self.lr)


@dataclass
class TrainConfig:
    """Everything one training run needs; the resolved copy is saved as runs/<name>/config.resolved.yaml."""

    train_data: list[str] = field(default_factory=list)  # HDF5 trajectory files (meshsim.datasets)
    valid_data: list[str] = field(default_factory=list)  # validation rollouts come from these; none = skip
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    name: str = "run"  # run folder runs/<name>/ unless run_dir is given
    run_dir: str = ""
    batch_size: int = 1  # graphs per step and per process (global batch = batch_size x world size)
    steps: int = 1000
    warmup_steps: int = 0  # first steps that only accumulate normalizer statistics
    unroll_steps: int = 1  # pushforward: each step first rolls u ~ U{0..unroll_steps-1} steps without gradients
    log_interval: int = 10  # steps between metrics.csv rows
    checkpoint_interval: int = 500  # steps between writes of checkpoints/last.pt
    val_interval: int = 500  # steps between validation rollouts (0 = only at the end)
    val_rollouts: int = 2  # trajectories of valid_data rolled out per validation
    val_steps: int = 50  # rollout length (steps after the two ground-truth frames)
    time_limit_minutes: float = 0.0  # stop (validate, checkpoint) once this wall-clock budget is spent; 0 = none
    cpu_limit_minutes: float = 0.0  # stop once this process has used this much CPU time (summed over resumes)
    snapshot_cpu_minutes: list[float] = field(default_factory=list)  # also save checkpoints/cpu_<m>min.pt at these
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N (under torchrun: cuda:LOCAL_RANK)
    num_workers: int = 0  # DataLoader worker processes reading HDF5 frames and building graphs (GraphBuilder)
    threads: int = 0  # torch CPU threads per process; 0 = automatic (free cores; 1 for small graphs), meshsim.threads
    tensorboard: bool = False  # also write TensorBoard events (skipped with a note when not installed)
    find_unused_parameters: bool = False  # DDP option for models with branches a batch may not reach

    def __post_init__(self) -> None:
        if isinstance(self.train_data, str):
            self.train_data = [self.train_data]
        if isinstance(self.valid_data, str):
            self.valid_data = [self.valid_data]
        for key in ("batch_size", "steps", "log_interval", "checkpoint_interval", "val_rollouts", "val_steps",
                    "unroll_steps"):
            _positive(key, getattr(self, key))
        for key in ("warmup_steps", "val_interval", "num_workers", "time_limit_minutes", "cpu_limit_minutes",
                    "threads"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)}")
        if self.optim.over_budget and not (self.time_limit_minutes or self.cpu_limit_minutes):
            raise ConfigError("optim.over_budget decays the learning rate over time_limit_minutes or "
                              "cpu_limit_minutes: set one (> 0)")
        self.snapshot_cpu_minutes = sorted(float(m) for m in self.snapshot_cpu_minutes)
        if any(not m > 0 for m in self.snapshot_cpu_minutes):
            raise ConfigError(f"snapshot_cpu_minutes must all be > 0, got {self.snapshot_cpu_minutes}")
        if self.warmup_steps >= self.steps:
            raise ConfigError(f"warmup_steps ({self.warmup_steps}) must be smaller than steps ({self.steps})")
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ConfigError(f"name must be a plain folder name, got {self.name!r}")
        check_device(self.device)


def check_device(dev: str) -> None:
    """A training device setting: auto, cpu, cuda or cuda:N (whether CUDA is there is checked when it is used)."""
    if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {dev!r}")


def _positive(key: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{key} must be > 0, got {value!r}")
