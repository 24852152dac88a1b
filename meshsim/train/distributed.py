"""One process or many under `torchrun`: process-group set-up and a deterministic split of the data.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; we then join a process group (gloo on CPU, nccl on CUDA) and the
trainer wraps the model in DistributedDataParallel. Only rank 0 writes files.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from meshsim.errors import ConfigError


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized_here: bool = False  # we created the process group, so we destroy it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str = "auto") -> DistEnv:
    """Read torchrun's environment, pick the device, and join the process group when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local if world > 1 else None)
    if world <= 1:
        return DistEnv(device=dev)
    created = False
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
        created = True
    return DistEnv(rank, world, local, dev, created)


def resolve_device(device: str, local_rank: int | None = None) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={device} but CUDA is not available here: use device=cpu or device=auto")
        if device == "cuda" and local_rank is not None:
            device = f"cuda:{local_rank}"
    return torch.device(device)


def finish(env: DistEnv) -> None:
    """End a run that succeeded on this rank: wait for every rank, then destroy the group we created.

    Not for a failed run: barrier and destroy are collectives and another rank may be stuck in a different one;
    there the process exit closes the group and torchrun stops the other ranks.

    Call it only once the DistributedDataParallel wrapper is unreachable: a wrapper (its reducer) that outlives
    `destroy_process_group` can hang the gloo teardown, leaving a rank that never exits. Collecting garbage first
    also frees a wrapper caught in a reference cycle.
    """
    if not (env.initialized_here and dist.is_initialized()):
        return
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def broadcast_object(env: DistEnv, obj):
    """`obj` of rank 0 on every rank."""
    if not env.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def epoch_order(num_items: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled item order of one epoch: a pure function of (seed, epoch), identical on every rank."""
    return np.random.default_rng([seed, epoch]).permutation(num_items)


def rank_batches(num_items: int, batch_size: int, seed: int, epoch: int, rank: int, world: int) -> np.ndarray:
    """This rank's batches of one epoch, [batches, batch_size] item indices.

    The epoch order is cut into global batches of `batch_size * world` (the incomplete tail is dropped, so every
    rank takes the same number of steps); rank r takes the r-th slice of each global batch.
    """
    order = epoch_order(num_items, seed, epoch)
    per_step = batch_size * world
    steps = num_items // per_step
    if steps == 0:
        raise ConfigError(
            f"{num_items} training samples cannot fill one step of batch_size={batch_size} x {world} processes: "
            "lower batch_size or add data"
        )
    grid = order[: steps * per_step].reshape(steps, world, batch_size)
    return grid[:, rank, :]


def steps_per_epoch(num_items: int, batch_size: int, world: int) -> int:
    return num_items // (batch_size * world)
