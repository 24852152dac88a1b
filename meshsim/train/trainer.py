"""Training loop of the learned mesh simulators (HCMT, MGN), in one process or many under torchrun.

    from meshsim.train import train, TrainConfig
    result = train(load_config(TrainConfig, "data/train_hcmt_impact_plate.yaml"), resume=False)

Reproducibility: the data order of an epoch is a pure function of (seed, epoch), the position inside it follows
from the step, and checkpoints carry model, optimizer, schedule, step and every rank's RNG states. So a run
resumed from `checkpoints/last.pt` takes exactly the steps the uninterrupted run would have taken.
"""

from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from meshsim.config import save_config
from meshsim.errors import CheckpointError, ConfigError, OutputError
from meshsim.outputs import make_folder
from meshsim.progress import progress
from meshsim.threads import ThroughputWatch, set_threads
from meshsim.train import distributed as D
from meshsim.train.budget import Clock, budget_spent, out_of_time
from meshsim.train.checkpoint import (
    read_checkpoint,
    restore_training,
    rng_state,
    save_checkpoint,
    set_rng_state,
    state_digest,
    training_payload,
)
from meshsim.train.config import TrainConfig
from meshsim.train.logging import MetricsLog

VAL_COLUMNS = ["val_p1", "val_p_all", "val_diverged"]


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    loss: float  # mean training loss over the last logged interval
    best_metric: float  # best validation p_all (x1e3); inf without validation data
    world_size: int


class _LossModule(torch.nn.Module):
    """DDP synchronises gradients of what runs through forward(): route the simulator's loss through it."""

    def __init__(self, sim):
        super().__init__()
        self.sim = sim

    def forward(self, batch, accumulate_stats: bool, unroll: int = 0):
        return self.sim.loss(batch, accumulate_stats=accumulate_stats, unroll=unroll)


@dataclass
class _Run:
    """What one training run holds between its steps."""

    cfg: TrainConfig
    env: D.DistEnv
    folder: Path
    resume: bool
    dim: int
    dataset: Any
    sim: Any  # LearnedSimulator
    optimizer: torch.optim.Optimizer
    model: torch.nn.Module | None  # the loss module (DDP-wrapped under torchrun); None once training ends
    val_set: list
    start: int
    best: float
    clock: Clock

    @property
    def checkpoints(self) -> Path:
        return self.folder / "checkpoints"

    def payload(self, step: int, rng_states: list | None = None) -> dict:
        return training_payload(self.cfg, self.sim, self.optimizer, step, self.best, self.dim, rng_states,
                                self.clock.cpu_seconds())


def train(cfg: TrainConfig, resume: bool = False, run_dir: str | Path | None = None,
          show_progress: bool = True) -> TrainResult:
    """Train `cfg.model` on `cfg.train_data`; see docs/training.md for the run folder it fills."""
    env = D.setup(cfg.device)
    try:
        run = _set_up(cfg, env, Path(run_dir or cfg.run_dir or Path("runs") / cfg.name), resume)
        done, last_loss = _train_steps(run, show_progress)
        run.model = None  # the DDP wrapper must be gone before its process group is destroyed (D.finish)
        D.finish(env)
        return TrainResult(run.folder, done, last_loss, run.best, env.world_size)
    except BaseException:
        raise  # a failed rank neither waits for the others nor destroys the group: both are collectives


def _set_up(cfg: TrainConfig, env: D.DistEnv, folder: Path, resume: bool) -> _Run:
    """Data, model, optimizer and (with `resume`) the state of `folder/checkpoints/last.pt`; the run folder is made
    only once everything was accepted, so a refused run leaves nothing behind."""
    from meshsim.datasets import FrameWindowDataset
    from meshsim.models import LearnedSimulator

    last_path = folder / "checkpoints" / "last.pt"
    if env.is_main:
        _prepare_run_dir(folder, last_path, resume)
    D.barrier(env)
    if not cfg.train_data:
        raise ConfigError("train_data is empty: list the HDF5 trajectory files to train on")
    first = FrameWindowDataset(cfg.train_data, history=1, horizon=1)[0]  # data checks before window sizes
    dim = int(first["mesh_pos"].shape[1])
    _check_material_keys(cfg, first, dim)
    dataset = FrameWindowDataset(cfg.train_data, history=1, horizon=cfg.unroll_steps)
    if env.device.type == "cpu":
        set_threads(cfg.threads, nodes=int(dataset[0]["mesh_pos"].shape[0]) * cfg.batch_size,
                    processes=env.world_size)
    D.rank_batches(len(dataset), cfg.batch_size, cfg.seed, 0, env.rank, env.world_size)  # checks size

    _seed_all(cfg.seed)  # identical initial weights on every rank (DDP also broadcasts rank 0's)
    sim = LearnedSimulator(cfg.model, dim=dim).to(env.device)
    optimizer = torch.optim.Adam(sim.parameters(), lr=cfg.optim.lr)
    start, best, cpu_before = 0, math.inf, 0.0
    if resume:
        ckpt = read_checkpoint(last_path)
        restore_training(ckpt, sim, optimizer, last_path)
        start, best = int(ckpt["step"]), float(ckpt.get("best_metric", math.inf))
        cpu_before = float(ckpt.get("cpu_seconds", 0.0))
        ranks = ckpt.get("rng", {}).get("ranks", [])
        if len(ranks) == env.world_size:
            set_rng_state(ranks[env.rank])
        else:  # another world size: a fresh, still deterministic stream per rank
            _seed_all(cfg.seed + 7919 * env.rank + 104729 * start)
    else:
        _seed_all(cfg.seed + 7919 * env.rank)
    if start >= cfg.steps:
        raise ConfigError(f"{last_path} is at step {start}, not below steps={cfg.steps}: raise steps to go on")

    model = _LossModule(sim)
    if env.distributed:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[env.device.index] if env.device.type == "cuda" else None,
            find_unused_parameters=cfg.find_unused_parameters)
    val_set = []
    if env.is_main and cfg.valid_data:
        from meshsim.train.validation import load_validation_set

        val_set = load_validation_set(cfg.valid_data, cfg.val_rollouts, cfg.val_steps)
    if env.is_main:
        make_folder(folder / "checkpoints")
        save_config(cfg, folder / "config.resolved.yaml")
    return _Run(cfg, env, folder, resume, dim, dataset, sim, optimizer, model, val_set, start, best, Clock(cpu_before))


def _train_steps(run: _Run, show_progress: bool) -> tuple[int, float]:
    """Steps from `run.start` until `steps` or the budget: (steps done, mean loss of the last logged interval)."""
    cfg, env = run.cfg, run.env
    if out_of_time(cfg, run.clock, env):  # resumed with its budget already spent: nothing to train, nothing to write
        return run.start, math.nan
    per_epoch = D.steps_per_epoch(len(run.dataset), cfg.batch_size, env.world_size)
    watch = ThroughputWatch(what="training")
    bar = progress(cfg.steps, run.start, show_progress and env.is_main)
    log, window, last_loss = None, {}, math.nan
    snapshots = [m for m in cfg.snapshot_cpu_minutes if 60.0 * m > run.clock.cpu_before]
    done, epoch_iter, epoch_of_iter = run.start, None, -1
    run.sim.train()
    for step in range(run.start, cfg.steps):
        step_start = time.perf_counter()
        epoch, offset = divmod(step, per_epoch)
        if epoch != epoch_of_iter:
            epoch_iter = _epoch_loader(run.dataset, run.sim.builder.collate, cfg, env, epoch, offset)
            epoch_of_iter = epoch
        batch = next(epoch_iter).to(env.device)  # graphs built by the loader (its workers, if any)
        warm, loss, logs = _optimisation_step(run, batch, step)
        step_seconds = time.perf_counter() - step_start  # data + step, not validation
        _collect(window, {"loss": loss.detach(), **(logs or {}),  # tensors, read back once per log interval
                          "seconds_per_step": step_seconds})
        if env.is_main and not warm:  # warm-up steps skip backward and unroll: ~3x faster, no baseline
            watch.add(step_seconds)
        if env.is_main and log is None:  # columns: what the model logs, known after its first step
            log = _open_log(run, window)
        done = step + 1
        bar.update(1)
        final = done == cfg.steps or out_of_time(cfg, run.clock, env)
        while env.is_main and snapshots and run.clock.cpu_seconds() >= 60.0 * snapshots[0]:
            save_checkpoint(run.checkpoints / f"cpu_{snapshots.pop(0):g}min.pt", run.payload(done))

        row = None
        if done % cfg.log_interval == 0 or final:
            row = _reduce_window(window, env)
            row.update(lr=run.optimizer.param_groups[0]["lr"], epoch=float(epoch), warmup=float(warm))
            last_loss, window = row["loss"], {}
            bar.set_postfix(loss=f"{last_loss:.4g}")
        if run.val_set and ((cfg.val_interval and done % cfg.val_interval == 0) or final):
            row = {**(row or {}), **_validate(run, done)}
        if env.is_main and row is not None:
            log.write(done, row)
        if done % cfg.checkpoint_interval == 0 or final:
            _save_last(run, done)
        if final:
            break
    bar.close()
    if log is not None:
        log.close()
    return done, last_loss


def _optimisation_step(run: _Run, batch, step: int) -> tuple[bool, torch.Tensor, dict]:
    """One step at `step`'s learning rate: (warm-up step?, loss, the model's logs). Warm-up steps only fill the
    normalizers; later ones draw a pushforward depth and update the weights."""
    cfg = run.cfg
    spent = budget_spent(cfg, run.clock, run.env) if cfg.optim.over_budget else None
    for group in run.optimizer.param_groups:
        group["lr"] = cfg.optim.lr * cfg.optim.lr_factor(step, spent)
    if step < cfg.warmup_steps:
        with torch.no_grad():
            loss, logs = run.model(batch, True)
        return True, loss, logs
    # pushforward depth of this step (drawn from the checkpointed RNG, so resume stays exact)
    unroll = int(torch.randint(cfg.unroll_steps, ())) if cfg.unroll_steps > 1 else 0
    run.optimizer.zero_grad(set_to_none=True)
    loss, logs = run.model(batch, True, unroll)
    loss.backward()
    run.optimizer.step()
    return False, loss, logs


def _open_log(run: _Run, window: dict) -> MetricsLog:
    columns = ["epoch", "lr", "loss", *sorted(set(window) - {"loss", "seconds_per_step"}), "seconds_per_step",
               "warmup", *VAL_COLUMNS]
    return MetricsLog(run.folder / "metrics.csv", columns, run.start if run.resume else None,
                      run.folder / "tensorboard" if run.cfg.tensorboard else None)


def _validate(run: _Run, done: int) -> dict[str, float]:
    """Validation rollouts (main rank); a new best p_all is saved as best.pt."""
    from meshsim.train.validation import validate

    val = validate(run.sim, run.val_set)
    if val["val_p_all"] < run.best:
        run.best = val["val_p_all"]
        save_checkpoint(run.checkpoints / "best.pt", run.payload(done))
    return val


def _save_last(run: _Run, done: int) -> None:
    """last.pt with every rank's RNG state and replica digest (a collective: every rank calls it)."""
    states, digests = _gather_rng(run.env), _sync_replicas(run.sim, run.env)
    if run.env.is_main:
        save_checkpoint(run.checkpoints / "last.pt", {**run.payload(done, states), "replica_digests": digests})


def train_from_file(config: str | Path, overrides: list[str] = (), resume: bool = False,
                    run_dir: str | Path | None = None) -> TrainResult:
    from meshsim.config import load_config

    return train(load_config(TrainConfig, config, overrides), resume=resume, run_dir=run_dir)


def _check_material_keys(cfg: TrainConfig, sample: dict, dim: int) -> None:
    """Name the data (dimension, scene) when the recipe's material keys do not fit it, e.g. a 2D recipe on 3D data."""
    attrs = sample["attrs"]
    missing = [k for k in cfg.model.material_keys if k not in attrs]
    if missing:
        from meshsim.datasets import TrajectoryFile

        with TrajectoryFile(cfg.train_data[0]) as f:  # numeric attrs only in `sample`: the scene name is a string
            scene = f.read(f.ids[0]).attrs.get("scenario", "an unnamed source") if f.ids else "an unnamed source"
        usable = ", ".join(sorted(k for k, v in attrs.items() if isinstance(v, (int, float)) and k != "seed"))
        raise ConfigError(
            f"{cfg.train_data[0]} holds {dim}D trajectories of {scene} without the attribute {missing[0]!r} that "
            f"model.material_keys reads: use a recipe written for this data, or set model.material_keys to some of "
            f"{usable or 'none'} (or [])")


def _prepare_run_dir(run: Path, last_path: Path, resume: bool) -> None:
    if resume and not last_path.is_file():
        raise CheckpointError(f"cannot resume: {last_path} does not exist; start without --resume")
    if not resume and last_path.is_file():
        raise OutputError(f"{run} already holds a run: pass --resume to continue it, or choose another name/--run-dir")


def _epoch_loader(dataset, collate, cfg: TrainConfig, env: D.DistEnv, epoch: int, offset: int):
    """Iterator over this rank's batched graphs (`collate`: GraphBuilder.collate) of `epoch`, from batch `offset`."""
    batches = D.rank_batches(len(dataset), cfg.batch_size, cfg.seed, epoch, env.rank, env.world_size)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=batches[offset:].tolist(), collate_fn=collate, num_workers=cfg.num_workers,
        generator=torch.Generator().manual_seed(cfg.seed),  # keeps the global RNG untouched by the loader
    )
    return iter(loader)


def _collect(window: dict[str, list[float]], values: dict[str, float]) -> None:
    for key, value in values.items():
        window.setdefault(key, []).append(value)


def _reduce_window(window: dict[str, list[float]], env: D.DistEnv) -> dict[str, float]:
    """Mean of each logged value over the interval and over ranks."""
    keys = sorted(window)
    means = torch.stack([torch.stack([torch.as_tensor(v, dtype=torch.float64).cpu() for v in window[k]]).mean()
                         for k in keys])
    if env.distributed:  # on the process group's device (nccl reduces CUDA tensors only)
        means = means.to(env.device)
        dist.all_reduce(means)
        means = means.cpu() / env.world_size
    return dict(zip(keys, means.tolist()))


def _sync_replicas(sim, env: D.DistEnv) -> list[str]:
    """Give every replica rank 0's normalizer statistics, then return each rank's state digest.

    DDP already broadcasts rank 0's buffers at the start of every forward, so this changes nothing for training;
    it makes the replicas bit-identical at checkpoints, and the digests (saved in last.pt) prove it.
    """
    if not env.distributed:
        return [state_digest(sim.state_dict())]
    for buffer in sim.buffers():
        dist.broadcast(buffer, src=0)
    digests = [None] * env.world_size
    dist.all_gather_object(digests, state_digest(sim.state_dict()))
    if len(set(digests)) > 1 and env.is_main:
        print(f"meshsim: warning: replicas differ at this checkpoint ({len(set(digests))} distinct states)",
              file=sys.stderr)
    return digests


def _gather_rng(env: D.DistEnv) -> list | None:
    state = rng_state()
    if not env.distributed:
        return [state]
    states = [None] * env.world_size
    dist.all_gather_object(states, state)
    return states


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
