"""Node features, training noise, targets and loss masks of a learned mesh stepper.

Positions follow the frame window of `FrameWindowDataset(history=1, horizon=1)`: prev = x_{t-1},
cur = x_t, next = x_{t+1}.
"""

from __future__ import annotations

import torch

from meshsim.datasets.schema import NodeType


def node_features(
    prev_pos: torch.Tensor,
    cur_pos: torch.Tensor,
    node_type: torch.Tensor,
    material: torch.Tensor,
    prescribed_motion: torch.Tensor | None = None,
    displacement: torch.Tensor | None = None,
) -> torch.Tensor:
    """[velocity x_t - x_{t-1}, one-hot node type (NodeType.SIZE), material [N, m], optional prescribed motion,
    optional displacement from the reference configuration]."""
    parts = [
        cur_pos - prev_pos,
        torch.nn.functional.one_hot(node_type.long(), NodeType.SIZE).to(cur_pos.dtype),
        material.to(cur_pos.dtype),
    ]
    if prescribed_motion is not None:
        parts.append(prescribed_motion)
    if displacement is not None:
        parts.append(displacement)
    return torch.cat(parts, dim=-1)


def output_mask(node_type: torch.Tensor, dim: int, predicted_types: tuple[int, ...]) -> torch.Tensor:
    """[N, d] bool: which position components the model predicts (and which enter the loss).

    Nodes whose type is in `predicted_types` are predicted in every component. HANDLE nodes never are.
    SYMMETRIC nodes (a NORMAL node held on a symmetry plane x = const) are predicted in their free
    components (all but x) whenever NORMAL nodes are predicted.
    """
    types = torch.tensor(sorted(set(predicted_types) - {NodeType.HANDLE}), device=node_type.device)
    mask = torch.isin(node_type, types)[:, None].expand(-1, dim).clone()
    if NodeType.NORMAL in predicted_types:
        symmetric = node_type == NodeType.SYMMETRIC
        mask[symmetric, 1:] = True
        mask[symmetric, 0] = False
    return mask


def add_training_noise(
    cur_pos: torch.Tensor,
    next_pos: torch.Tensor,
    node_type: torch.Tensor,
    std: float,
    gamma: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian noise of `std` on the current position of NORMAL nodes; the target absorbs `gamma` of it.

    The next position moves by (1 - gamma) * noise, so gamma = 1 keeps x_{t+1} (the Delta-x target then
    corrects the noise fully, as in HCMT) and gamma = 0.1 is MeshGraphNets' cloth setting.
    """
    if std <= 0.0:
        return cur_pos, next_pos
    noise = torch.randn(cur_pos.shape, generator=generator, dtype=cur_pos.dtype, device=cur_pos.device) * std
    noise = noise * (node_type == NodeType.NORMAL)[:, None].to(cur_pos.dtype)
    return cur_pos + noise, next_pos + (1.0 - gamma) * noise


def position_target(prev_pos: torch.Tensor, cur_pos: torch.Tensor, next_pos: torch.Tensor, order: str) -> torch.Tensor:
    """First order ("delta"): x_{t+1} - x_t. Second order ("accel"): x_{t+1} - 2 x_t + x_{t-1}."""
    if order == "delta":
        return next_pos - cur_pos
    if order == "accel":
        return next_pos - 2.0 * cur_pos + prev_pos
    raise ValueError(f"unknown target {order!r}: use 'delta' or 'accel'")


def integrate(prev_pos: torch.Tensor, cur_pos: torch.Tensor, update: torch.Tensor, order: str) -> torch.Tensor:
    """Next position from the predicted update (inverse of `position_target`)."""
    if order == "delta":
        return cur_pos + update
    if order == "accel":
        return 2.0 * cur_pos - prev_pos + update
    raise ValueError(f"unknown target {order!r}: use 'delta' or 'accel'")
