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

import numpy as np
import torch
import torch.distributed as dist

from meshsim.config import save_config, to_dict
from meshsim.errors import CheckpointError, ConfigError, OutputError
from meshsim.outputs import make_folder
from meshsim.progress import progress
from meshsim.threads import ThroughputWatch, set_threads
from meshsim.train import distributed as D
from meshsim.train.checkpoint import read_checkpoint, rng_state, save_checkpoint, set_rng_state, state_digest
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


def train(cfg: TrainConfig, resume: bool = False, run_dir: str | Path | None = None,
          show_progress: bool = True) -> TrainResult:
    """Train `cfg.model` on `cfg.train_data`; see docs/training.md for the run folder it fills."""
    from meshsim.datasets import FrameWindowDataset
    from meshsim.models import LearnedSimulator

    env = D.setup(cfg.device)
    try:
        run = Path(run_dir or cfg.run_dir or Path("runs") / cfg.name)
        ckpt_dir = run / "checkpoints"
        last_path = ckpt_dir / "last.pt"
        if env.is_main:
            _prepare_run_dir(run, last_path, resume)
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
        watch = ThroughputWatch(what="training")
        per_epoch = D.steps_per_epoch(len(dataset), cfg.batch_size, env.world_size)
        D.rank_batches(len(dataset), cfg.batch_size, cfg.seed, 0, env.rank, env.world_size)  # checks size

        _seed_all(cfg.seed)  # identical initial weights on every rank (DDP also broadcasts rank 0's)
        sim = LearnedSimulator(cfg.model, dim=dim).to(env.device)
        optimizer = torch.optim.Adam(sim.parameters(), lr=cfg.optim.lr)
        start, best, cpu_before = 0, math.inf, 0.0
        if resume:
            ckpt = read_checkpoint(last_path)
            _restore(ckpt, sim, optimizer, last_path)
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
        if env.is_main:  # the run folder only now: a run refused above leaves nothing behind
            make_folder(run / "checkpoints")
            save_config(cfg, run / "config.resolved.yaml")

        log = None
        bar = progress(cfg.steps, start, show_progress and env.is_main)
        window: dict[str, list[float]] = {}
        last_loss = math.nan
        clock = _Clock(cpu_before)
        snapshots = [m for m in cfg.snapshot_cpu_minutes if 60.0 * m > cpu_before]
        done = start
        sim.train()
        epoch_iter, epoch_of_iter = None, -1
        for step in range(start, cfg.steps):
            step_start = time.perf_counter()
            epoch, offset = divmod(step, per_epoch)
            if epoch != epoch_of_iter:
                epoch_iter = _epoch_loader(dataset, sim.builder.collate, cfg, env, epoch, offset)
                epoch_of_iter = epoch
            batch = next(epoch_iter).to(env.device)  # graphs built by the loader (its workers, if any)
            spent = _budget_spent(cfg, clock, env) if cfg.optim.over_budget else None
            for group in optimizer.param_groups:
                group["lr"] = cfg.optim.lr * cfg.optim.lr_factor(step, spent)
            warm = step < cfg.warmup_steps
            # pushforward depth of this step (drawn from the checkpointed RNG, so resume stays exact)
            unroll = int(torch.randint(cfg.unroll_steps, ())) if cfg.unroll_steps > 1 and not warm else 0
            if warm:
                with torch.no_grad():
                    loss, logs = model(batch, True)
            else:
                optimizer.zero_grad(set_to_none=True)
                loss, logs = model(batch, True, unroll)
                loss.backward()
                optimizer.step()
            step_seconds = time.perf_counter() - step_start  # data + step, not validation
            _collect(window, {"loss": loss.detach(), **(logs or {}),  # tensors, read back once per log interval
                              "seconds_per_step": step_seconds})
            if env.is_main and not warm:  # warm-up steps skip backward and unroll: ~3x faster, no baseline
                watch.add(step_seconds)
            if env.is_main and log is None:  # columns: what the model logs, known after its first step
                columns = ["epoch", "lr", "loss", *sorted(set(window) - {"loss", "seconds_per_step"}),
                           "seconds_per_step", "warmup", *VAL_COLUMNS]
                log = MetricsLog(run / "metrics.csv", columns, start if resume else None,
                                 run / "tensorboard" if cfg.tensorboard else None)
            done = step + 1
            bar.update(1)
            final = done == cfg.steps or _out_of_time(cfg, clock, env)
            while env.is_main and snapshots and clock.cpu_seconds() >= 60.0 * snapshots[0]:
                save_checkpoint(ckpt_dir / f"cpu_{snapshots[0]:g}min.pt",
                                _payload(cfg, sim, optimizer, done, best, dim, None, clock))
                snapshots.pop(0)

            row = None
            if done % cfg.log_interval == 0 or final:
                row = _reduce_window(window, env)
                row.update(lr=optimizer.param_groups[0]["lr"], epoch=float(epoch), warmup=float(warm))
                last_loss = row["loss"]
                window = {}
                bar.set_postfix(loss=f"{last_loss:.4g}")
            validating = bool(val_set) and ((cfg.val_interval and done % cfg.val_interval == 0) or final)
            if validating:
                from meshsim.train.validation import validate

                val = validate(sim, val_set)
                row = {**(row or {}), **val}
                if val["val_p_all"] < best:
                    best = val["val_p_all"]
                    save_checkpoint(ckpt_dir / "best.pt", _payload(cfg, sim, optimizer, done, best, dim, None, clock))
            if env.is_main and row is not None:
                log.write(done, row)
            if done % cfg.checkpoint_interval == 0 or final:
                states, digests = _gather_rng(env), _sync_replicas(sim, env)
                if env.is_main:
                    payload = _payload(cfg, sim, optimizer, done, best, dim, states, clock)
                    save_checkpoint(last_path, {**payload, "replica_digests": digests})
            if final:
                break
        bar.close()
        if log is not None:
            log.close()
        del model  # the DDP wrapper must be gone before its process group is destroyed (D.finish)
        D.finish(env)
        return TrainResult(run, done, last_loss, best, env.world_size)
    except BaseException:
        raise  # a failed rank neither waits for the others nor destroys the group: both are collectives


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


class _Clock:
    """Wall-clock time of this run and CPU time of this process, the latter summed over resumed runs."""

    def __init__(self, cpu_before: float = 0.0):
        self.wall0, self.cpu0, self.cpu_before = time.perf_counter(), time.process_time(), cpu_before

    def wall_seconds(self) -> float:
        return time.perf_counter() - self.wall0

    def cpu_seconds(self) -> float:
        return self.cpu_before + time.process_time() - self.cpu0


def _budget_spent(cfg: TrainConfig, clock: _Clock, env: D.DistEnv) -> float:
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


def _out_of_time(cfg: TrainConfig, clock: _Clock, env: D.DistEnv) -> bool:
    """Whether the wall-clock or CPU budget is spent; rank 0's clocks decide for every rank."""
    return bool(cfg.time_limit_minutes or cfg.cpu_limit_minutes) and _budget_spent(cfg, clock, env) > 1.0


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


def _payload(cfg: TrainConfig, sim, optimizer, step: int, best: float, dim: int, rng_states,
             clock: _Clock | None = None) -> dict:
    return {
        "model_config": to_dict(cfg.model),
        "dim": dim,
        "model": {k: v.detach().cpu() for k, v in sim.state_dict().items()},
        "optimizer": _to_cpu(optimizer.state_dict()),
        "scheduler": {"kind": "exponential", "lr": cfg.optim.lr, "decay_rate": cfg.optim.decay_rate,
                      "decay_steps": cfg.optim.decay_steps, "min_lr": cfg.optim.min_lr,
                      "over_budget": cfg.optim.over_budget, "step": step},
        "step": step,
        "best_metric": best,
        "rng": {"ranks": rng_states or []},
        "train_config": to_dict(cfg),
        "cpu_seconds": clock.cpu_seconds() if clock is not None else 0.0,  # training CPU time so far (this rank)
    }


def _restore(ckpt: dict, sim, optimizer, path: Path) -> None:
    try:
        sim.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0][:200]
        raise CheckpointError(f"{path} does not fit this config's model ({first}): use the run's own config") from None
    if "optimizer" not in ckpt:
        raise CheckpointError(f"{path} has no optimizer state (a model-only file?); it cannot be resumed")
    try:
        optimizer.load_state_dict(ckpt["optimizer"])
    except (ValueError, KeyError) as err:
        raise CheckpointError(f"{path}: optimizer state does not fit this model ({err})") from None


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
