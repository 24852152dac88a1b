"""Training checkpoints: the file format and its reader/writer are `meshsim.models.checkpoint`, and `load_model`
(a checkpoint file or a shipped model's name) is `meshsim.train.pretrained`; both are re-exported here. This
module adds what training keeps beside the weights: RNG state and replica digests.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import numpy as np
import torch

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
