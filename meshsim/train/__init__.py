"""Training of the learned mesh simulators (HCMT, MGN): configs, loop, checkpoints, logging, torchrun/DDP.

NCLaw fitting lives beside it in `meshsim.train.nclaw*` (its own engineer). Heavy imports stay lazy here.
"""

from __future__ import annotations


def __getattr__(name: str):
    if name in ("train", "train_from_file", "TrainResult"):
        from meshsim.train import trainer

        return getattr(trainer, name)
    if name in ("TrainConfig", "OptimConfig"):
        from meshsim.train import config

        return getattr(config, name)
    if name in ("read_checkpoint", "save_checkpoint", "load_model"):
        from meshsim.train import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'meshsim.train' has no attribute {name!r}")
