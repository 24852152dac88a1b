"""Checkpoints of every model kind: written atomically, read with `weights_only=True` (meshsim's one torch.load).

Learned mesh simulators (HCMT, MGN), written by `meshsim train`:

    {"format": "meshsim.checkpoint", "version": 1, "model_config": dict, "dim": int,
     "model": state_dict (normalizer statistics are buffers in it), "optimizer": state_dict,
     "scheduler": state_dict, "step": int, "best_metric": float, "rng": {...}, "train_config": dict,
     "versions": {"meshsim", "torch", "python", "git"}}

NCLaw materials, written by `meshsim nclaw train`: {"kind": "nclaw", "version": meshsim version, "config",
"material", "scene_config", "model", "optimizer", "scheduler", "epoch", "history"}.

A missing file, a truncated one, one that needs unpickling of arbitrary objects (code), or one of another
format, kind or version is refused with a one-line `CheckpointError`. Training state (RNG, digests) lives in
`meshsim.train.checkpoint`; building an NCLaw material from its checkpoint in `meshsim.train.nclaw`.
"""

from __future__ import annotations

import pickle
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from meshsim.errors import CheckpointError, ConfigError
from meshsim.outputs import atomic_path, output_folder

FORMAT = "meshsim.checkpoint"
VERSION = 1
REQUIRED = ("model_config", "dim", "model", "step")
TRAIN_HINT = "pass a file written by `meshsim train`"
NCLAW_HINT = "train one with `meshsim nclaw train`"


# ------------------------------------------------------------------------------------------------------ files
def write_checkpoint(path: str | Path, data: dict[str, Any]) -> None:
    """Write `data` as it is to `path` atomically (its folder is made when missing)."""
    path = Path(path)
    output_folder(path)
    with atomic_path(path) as tmp:
        torch.save(data, tmp)


def load_checkpoint_file(path: str | Path, hint: str = TRAIN_HINT) -> Any:
    """The file's content as CPU tensors and plain values. Never executes code stored in the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found: {hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"checkpoint {path} carries pickled Python objects (possibly code), not only tensors and numbers; "
            f"refusing to load it: {hint}"
        ) from None
    except Exception as err:  # truncated or corrupt: zip, EOF, OS, runtime errors
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"checkpoint {path} is unreadable or truncated ({first}): use another file") from None


# ---------------------------------------------------------------------------------- learned simulators (HCMT, MGN)
def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write `payload` (plus format, version and package versions) to `path` atomically."""
    write_checkpoint(path, {"format": FORMAT, "version": VERSION, **payload, "versions": package_versions()})


def validate_checkpoint(data: Any, path: str | Path, required: tuple[str, ...] = REQUIRED) -> dict[str, Any]:
    """`data` when it is a meshsim checkpoint of this version holding the `required` keys."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path} is not a meshsim checkpoint (format {found!r}): use `meshsim train` output")
    if data.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {data.get('version')!r}, this meshsim reads version {VERSION}: "
            "retrain or use a matching meshsim"
        )
    missing = [k for k in required if k not in data]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing[0]!r}: the file is incomplete, use another one")
    return data


def read_checkpoint(path: str | Path, required: tuple[str, ...] = REQUIRED) -> dict[str, Any]:
    """Load and validate a learned-simulator checkpoint (CPU tensors)."""
    return validate_checkpoint(load_checkpoint_file(path), path, required)


def simulator_from_checkpoint(ckpt: dict[str, Any], path: str | Path = "checkpoint"):
    """The LearnedSimulator (on the CPU, eval mode) that a validated checkpoint describes."""
    from meshsim.config import from_dict
    from meshsim.models.config import ModelConfig
    from meshsim.models.simulator import LearnedSimulator

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
    return sim.eval()


def load_simulator(path: str | Path, map_location: str | torch.device = "cpu"):
    """Rebuild a LearnedSimulator (weights and normalizer statistics) from a meshsim.train checkpoint file."""
    ckpt = read_checkpoint(path, required=("model_config", "dim", "model"))
    return simulator_from_checkpoint(ckpt, path).to(map_location)


# --------------------------------------------------------------------------------------------------------- NCLaw
def read_nclaw_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate an NCLaw checkpoint (CPU tensors)."""
    data = load_checkpoint_file(path, NCLAW_HINT)
    if not isinstance(data, dict) or data.get("kind") != "nclaw":
        raise CheckpointError(f"{path} is not an NCLaw checkpoint: pass one written by `meshsim nclaw train`")
    return data


# ------------------------------------------------------------------------------------------------------ versions
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
