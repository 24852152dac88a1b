"""Warp set-up shared by the kernels: quiet one-time init and zero-copy launches on torch tensors."""

from __future__ import annotations

import torch
import warp as wp

wp.config.quiet = True
_initialised = False


def _init() -> None:
    global _initialised
    if not _initialised:
        wp.init()
        _initialised = True


def as_warp(x, dtype=None):
    """A torch tensor as a Warp array (ctype, no copy); `dtype` a Warp vector type views the last dim as it."""
    _init()
    return wp.from_torch(x.detach(), dtype=dtype, requires_grad=False, return_ctype=True)


def launch(kernel, dim, inputs: list, device: torch.device) -> None:
    """Run `kernel` over `dim` threads; tensors are wrapped without copies, other inputs passed as they are.

    On CUDA the launch goes on torch's current stream, so it is ordered with the surrounding torch ops.
    """
    _init()
    args = [as_warp(x) if isinstance(x, torch.Tensor) else x for x in inputs]
    if device.type == "cuda":
        stream = wp.stream_from_torch(device)
        wp.launch(kernel, dim=dim, inputs=args, device=stream.device, stream=stream)
    else:
        wp.launch(kernel, dim=dim, inputs=args, device="cpu")


def load(kernel, device: torch.device) -> None:
    """Compile or load the kernel's module for `device` now (before launching it from several threads)."""
    _init()
    kernel.module.load(wp.device_from_torch(device))
