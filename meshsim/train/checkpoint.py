"""Training checkpoints: the file format and its reader/writer are `meshsim.models.checkpoint`, and `load_model`
(a checkpoint file or a shipped model's name) is `meshsim.train.pretrained`; both are re-exported here. This
module adds what training keeps beside the weights (optimizer, schedule, RNG state, replica digests, CPU time)
and restores it on `--resume`.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meshsim.config import to_dict
from meshsim.errors import CheckpointError
from meshsim.models.checkpoint import (  # noqa: F401  (re-exported: the names training code and tests use)
    FORMAT,
    REQUIRED,
    VERSION,
    package_versions,
    read_checkpoint,
    save_checkpoint,
)
from meshsim.train.pretrained import load_model  # noqa: F401  (re-exported)


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 of a state_dict's names and raw bytes: equal digests mean bit-identical replicas."""
    h = hashlib.sha256()
    for name, tensor in state.items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def rng_state() -> dict[str, Any]:
    """Every random generator training draws from, as tensors and numbers (weights_only-safe)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": _python_state_to_plain(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state_to_plain(s: tuple) -> list:
    version, internal, gauss = s
    return [version, list(internal), gauss]


def training_payload(cfg, sim, optimizer, step: int, best: float, dim: int, rng_states: list | None,
                     cpu_seconds: float) -> dict:
    """What a training checkpoint holds (`cfg`: the run's TrainConfig); `rng_states` per rank, None in snapshots."""
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
        "cpu_seconds": cpu_seconds,  # training CPU time so far (this rank, summed over resumes)
    }


def restore_training(ckpt: dict, sim, optimizer, path: Path) -> None:
    """Load a checkpoint's weights and optimizer state, with one line naming what does not fit."""
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
