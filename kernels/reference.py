"""Composed-torch oracles for the Warp kernels: the code a user would write without them.

They define the semantics the fused kernels must reproduce (values and autograd gradients) and are the
baselines of `benchmarks/kernels.py`. Simple and obviously right, not fast: every step materialises an
[E, H, D] tensor.
"""

from __future__ import annotations

import math

import torch


def edge_attention_reference(q, k, v, edge_bias, edge_gate, senders, receivers, num_nodes, mode="hcmt"):
    """Graph attention over edges s -> r with gather, elementwise ops and `index_add_` (autograd by torch)."""
    senders = senders.long()
    receivers = receivers.long()
    heads, dim = q.shape[1], q.shape[2]
    k_s, q_r, v_s = k[senders], q[receivers], v[senders]
    if mode == "hcmt":
        # Per-channel score, clipped; weights exp(score) with no normalisation (HCMT as released).
        score = torch.clamp(k_s * q_r / math.sqrt(dim) * edge_bias, -2.0, 2.0)
        message = torch.exp(score) * v_s * edge_gate
    elif mode == "softmax":
        score = (k_s * q_r).sum(-1) / math.sqrt(dim)  # [E, H]
        if edge_bias is not None:
            score = score + (edge_bias.sum(-1) if edge_bias.dim() == 3 else edge_bias)
        # Softmax over each receiver's incoming edges, shifted by the per-receiver maximum for stability.
        shift = torch.full((num_nodes, heads), -math.inf, dtype=score.dtype, device=score.device)
        shift = shift.scatter_reduce(0, receivers[:, None].expand_as(score), score.detach(), "amax")
        weight = torch.exp(score - shift[receivers])
        total = torch.zeros((num_nodes, heads), dtype=score.dtype, device=score.device)
        total = total.index_add(0, receivers, weight)
        alpha = weight / total[receivers]
        message = alpha[..., None] * v_s * edge_gate
    else:
        raise ValueError(f"unknown attention mode {mode!r}: use 'hcmt' or 'softmax'")
    out = torch.zeros((num_nodes, heads, dim), dtype=message.dtype, device=message.device)
    return out.index_add(0, receivers, message)


def radius_pairs_reference(pos, radius, *, sender_mask=None, receiver_mask=None, exclude_edges=None, batch=None):
    """All ordered pairs (i -> j), i != j, |pos_i - pos_j| < radius, by brute force over the N x N matrix.

    Squared distances are summed in float64 component by component, as the kernel does. Sorted by receiver
    then sender. Only for tests and the dense baseline: memory O(N^2).
    """
    p = pos.detach().double()
    n = p.shape[0]
    d2 = ((p[:, None, :] - p[None, :, :]) ** 2).sum(-1)
    keep = d2 < float(radius) ** 2
    keep.fill_diagonal_(False)
    if sender_mask is not None:
        keep &= sender_mask.bool()[:, None]
    if receiver_mask is not None:
        keep &= receiver_mask.bool()[None, :]
    if batch is not None:
        keep &= batch[:, None] == batch[None, :]
    if exclude_edges is not None and exclude_edges.numel():
        keep[exclude_edges[0].long(), exclude_edges[1].long()] = False
    senders, receivers = keep.nonzero(as_tuple=True)
    order = torch.argsort(receivers * max(n, 1) + senders)
    return torch.stack([senders[order], receivers[order]])


def polar_sigma_reference(F):
    """R (rotation of the polar decomposition F = R S) and sigma from `torch.linalg.svd`, with U and V made proper
    rotations (sigma_3 signed like det F). Its gradient is NaN where singular values repeat (F = I)."""
    U, S, Vh = torch.linalg.svd(F)
    V = Vh.transpose(-1, -2)
    ones = torch.ones_like(S[:, :2])
    du, dv = torch.sign(torch.det(U))[:, None], torch.sign(torch.det(V))[:, None]
    U = U * torch.cat([ones, du], 1)[:, None, :]  # last column flipped where det is -1
    V = V * torch.cat([ones, dv], 1)[:, None, :]
    return U @ V.transpose(-1, -2), S * torch.cat([ones, du * dv], 1)
