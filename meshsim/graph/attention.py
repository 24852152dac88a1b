"""Sparse edge attention in composed torch: the oracle and fallback for `meshsim.kernels.edge_attention`.

HCMT (`mode="hcmt"`), per edge s -> r, head h and channel c (no sum over channels, no softmax denominator):

    score = clamp(k[s] * q[r] / sqrt(D) * bias_e, -2, 2)
    out[r] = sum_{e: s -> r} exp(score) * v[s] * gate_e

`mode="softmax"` (ablation, same semantics as `meshsim.kernels`): a per-head dot-product score with an additive
edge bias, normalized over the edges arriving at each receiver:

    logit = sum_c k[s] * q[r] / sqrt(D) + sum_c bias_e;   out[r] = sum softmax_r(logit) * v[s] * gate_e
"""

from __future__ import annotations

import math

import torch


def edge_attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    edge_bias: torch.Tensor,
    edge_gate: torch.Tensor,
    senders: torch.Tensor,
    receivers: torch.Tensor,
    num_nodes: int,
    mode: str = "hcmt",
) -> torch.Tensor:
    """q, k, v [N, H, D]; edge_bias, edge_gate [E, H, D]; returns [num_nodes, H, D]."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    message = v[senders] * edge_gate
    out = torch.zeros((num_nodes,) + q.shape[1:], dtype=q.dtype, device=q.device)
    if mode == "hcmt":
        score = k[senders] * q[receivers] * scale * edge_bias
        return out.index_add_(0, receivers, torch.exp(score.clamp(-2.0, 2.0)) * message)
    if mode == "softmax":
        logits = (k[senders] * q[receivers]).sum(-1) * scale + edge_bias.sum(-1)  # [E, H]
        peak = torch.full((num_nodes, logits.shape[1]), -torch.inf, dtype=logits.dtype, device=logits.device)
        peak = peak.scatter_reduce(0, receivers[:, None].expand_as(logits), logits, "amax", include_self=True)
        weight = torch.exp(logits - peak[receivers].detach())
        total = torch.zeros_like(peak).index_add_(0, receivers, weight)
        alpha = weight / total[receivers].clamp(min=1e-30)
        return out.index_add_(0, receivers, alpha[..., None] * message)
    raise ValueError(f"unknown attention mode {mode!r}: use 'hcmt' or 'softmax'")


def _kernels():
    try:
        import meshsim.kernels as kernels
    except ImportError:
        return None
    return kernels if hasattr(kernels, "edge_attention") else None


def receiver_csr(senders: torch.Tensor, receivers: torch.Tensor, num_nodes: int):
    """The kernels' receiver-sorted edge order, built once per graph and reused by every layer (None without
    meshsim.kernels: the torch reference needs none)."""
    kernels = _kernels()
    if kernels is None or not hasattr(kernels, "receiver_csr"):
        return None
    return kernels.receiver_csr(senders, receivers, num_nodes)


def edge_attention(q, k, v, edge_bias, edge_gate, senders, receivers, num_nodes, mode="hcmt", csr=None):
    """Edge attention through `meshsim.kernels.edge_attention` when available, else the torch reference."""
    kernels = _kernels()
    if kernels is None or q.dtype not in (torch.float32, torch.float64):
        return edge_attention_reference(q, k, v, edge_bias, edge_gate, senders, receivers, num_nodes, mode)
    return kernels.edge_attention(q, k, v, edge_bias, edge_gate, senders, receivers, num_nodes, mode=mode, csr=csr)
