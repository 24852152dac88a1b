"""Checkpoints: plain dicts of tensors and numbers, written atomically, read with `weights_only=True`.

Layout (shared with `meshsim.models.load_simulator`):

    {"format": "meshsim.checkpoint", "version": 1, "model_config": dict, "dim": int,
     "model": state_dict (normalizer statistics are buffers in it), "optimizer": state_dict,
     "scheduler": state_dict, "step": int, "best_metric": float, "rng": {...}, "train_config": dict,
     "versions": {"meshsim", "torch", "python", "git"}}

A file of another format or version, a truncated file, or one that needs unpickling of arbitrary objects (code)
is refused with `CheckpointError`.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import platform
import random
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meshsim.errors import CheckpointError
from meshsim.outputs import output_folder

FORMAT = "meshsim.checkpoint"
VERSION = 1
REQUIRED = ("model_config", "dim", "model", "step")


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write `payload` (plus format, version and package versions) to `path` atomically."""
    path = Path(path)
    output_folder(path)
    data = {"format": FORMAT, "version": VERSION, **payload, "versions": package_versions()}
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(data, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate a checkpoint (CPU tensors). Never executes code stored in the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found: pass a file written by `meshsim train`")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"checkpoint {path} carries pickled Python objects (possibly code), not only tensors and numbers; "
            "refusing to load it: use a checkpoint written by `meshsim train`"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"checkpoint {path} is unreadable or truncated ({first}): use another file") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path} is not a meshsim checkpoint (format {found!r}): use `meshsim train` output")
    if data.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {data.get('version')!r}, this meshsim reads version {VERSION}: "
            "retrain or use a matching meshsim"
        )
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing[0]!r}: the file is incomplete, use another one")
    return data


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """(LearnedSimulator in eval mode, checkpoint dict) from a checkpoint file or a shipped model's name."""
    from meshsim.config import from_dict
    from meshsim.errors import ConfigError
    from meshsim.models import LearnedSimulator, ModelConfig
    from meshsim.train.pretrained import resolve_checkpoint

    path = resolve_checkpoint(path)  # a file, or the name of a shipped model
    ckpt = read_checkpoint(path)
    try:
        cfg = from_dict(ModelConfig, ckpt["model_config"], where=f"{path}: model_config")
    except ConfigError as err:
        raise CheckpointError(f"{err} (the checkpoint was written by an incompatible meshsim)") from None
    sim = LearnedSimulator(cfg, dim=int(ckpt["dim"]))
    try:
        sim.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0][:200]
        raise CheckpointError(f"checkpoint {path} does not match its model config ({first})") from None
    return sim.to(device).eval(), ckpt


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


def package_versions() -> dict[str, str]:
    from meshsim import __version__

    return {"meshsim": str(__version__), "torch": str(torch.__version__), "python": platform.python_version(),
            "git": _git_sha()}


def _git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""
