"""Fused graph attention over edges (HCMT's exact form, or a per-head softmax) as a torch autograd op.

For every edge s -> r the kernels gather k[s], v[s], q[r], score, weight and sum into out[r] in one pass,
and the backward pass recomputes the scores instead of keeping [E, H, D] temporaries: memory is the inputs,
the output and the gradients, nothing more.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import attention_kernels as ak
from ._warp import as_warp, cpu_workers, launch_many, warp_array
from .csr import ReceiverCSR, receiver_csr

_WARP_DTYPES = {torch.float32: ak.wp.float32, torch.float64: ak.wp.float64}
_VECTORS = {torch.float32: ak.vec8f, torch.float64: ak.vec8d}
MODES = ("hcmt", "softmax")


def edge_attention(q, k, v, edge_bias, edge_gate, senders, receivers, num_nodes, mode="hcmt", *, csr=None):
    """Attention of every node over its incoming edges; returns [num_nodes, H, D].

    out[r] = sum over edges e = (s -> r) of weight_e * v[s] * edge_gate[e], with

    - mode="hcmt" (HCMT as released): per channel, weight = exp(clip(k[s] * q[r] / sqrt(D) * edge_bias[e],
      -2, 2)), no normalisation; the gradient is zero where the clip is active (torch.clamp's convention:
      it passes at exactly -2 and 2).
    - mode="softmax": per head, score = (k[s] . q[r]) / sqrt(D) + bias, weight = softmax of the scores over
      the edges into r (shifted by their maximum). edge_bias is [E, H], or [E, H, D] summed over D, or None.

    Args:
        q: [num_nodes, H, D] queries (of receivers); k, v: [M, H, D] keys and values (of senders).
        edge_bias, edge_gate: [E, H, D] per-edge score bias and value gate (see mode for the softmax bias).
        senders, receivers: [E] integer node indices of the edges s -> r (any order, repeats allowed).
        num_nodes: number of receiver nodes (rows of the output).
        csr: optional `receiver_csr(senders, receivers, num_nodes)`, built once per graph and reused by every
            layer (it must come from these very edges).

    float32 or float64, CPU or CUDA, all inputs alike. Differentiable once (no double backward) in q, k, v,
    edge_bias, edge_gate. Fastest when D is a multiple of 8 (other D are zero-padded) and edges are sorted
    by receiver (the edge arrays are then read in order).
    """
    if mode not in MODES:
        raise ValueError(f"unknown attention mode {mode!r}: use one of {MODES}")
    heads, dim = _check_inputs(q, k, v, edge_gate, num_nodes)
    num_edges = senders.shape[0] if isinstance(senders, torch.Tensor) else -1
    if edge_gate.shape != (num_edges, heads, dim):
        raise ValueError(f"edge_gate must be [E, H, D] = [{num_edges}, {heads}, {dim}], got {tuple(edge_gate.shape)}")
    if mode == "hcmt":
        if edge_bias is None or edge_bias.shape != edge_gate.shape:
            raise ValueError(f"mode 'hcmt' needs edge_bias [E, H, D] = {tuple(edge_gate.shape)}")
    else:
        if edge_bias is None:
            edge_bias = q.new_zeros((num_edges, heads))
        elif edge_bias.shape == edge_gate.shape:
            edge_bias = edge_bias.sum(-1)
        elif edge_bias.shape != (num_edges, heads):
            raise ValueError(f"mode 'softmax' needs edge_bias [E, H] or [E, H, D], got {tuple(edge_bias.shape)}")
    if edge_bias.dtype != q.dtype or edge_bias.device != q.device:
        raise TypeError("edge_bias must have the dtype and device of q")
    if csr is None:
        csr = receiver_csr(senders, receivers, num_nodes)
    elif not isinstance(csr, ReceiverCSR) or csr.num_nodes != num_nodes or csr.num_edges != num_edges:
        raise ValueError("csr does not match this graph: build it with receiver_csr(senders, receivers, num_nodes)")
    if csr.row_ptr.device != q.device:
        raise ValueError(f"the edges are on {csr.row_ptr.device} but q is on {q.device}: move them to one device")
    if csr.max_sender >= k.shape[0]:
        raise ValueError(f"senders must lie in [0, {k.shape[0]}) (rows of k and v)")

    pad = (-dim) % 8  # the kernels work on 8 channels at a time; zero channels add nothing to any score
    if pad:
        q, k, v, edge_gate = (F.pad(x, (0, pad)) for x in (q, k, v, edge_gate))
        if mode == "hcmt":
            edge_bias = F.pad(edge_bias, (0, pad))
    out = _EdgeAttention.apply(q, k, v, edge_bias, edge_gate, csr, mode, 1.0 / math.sqrt(dim))
    return out[..., :dim] if pad else out


class _EdgeAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, bias, gate, csr, mode, scale):
        q, k, v, bias, gate = (x.contiguous() for x in (q, k, v, bias, gate))
        n, heads, dim = q.shape
        out = torch.empty_like(q) if n and csr.num_edges else torch.zeros_like(q)  # kernels write every row
        logsumexp = q.new_zeros((n, heads)) if mode == "softmax" else None
        parts = _parts(q, csr)
        x = None
        if n and csr.num_edges:
            kernels = ak.make_kernels(_WARP_DTYPES[q.dtype])
            x = _inputs(kernels, mode, q, k, v, bias, gate)
            tail = [_vec(out)] if mode == "hcmt" else [_vec(out), logsumexp]
            kernel = kernels.hcmt_forward if mode == "hcmt" else kernels.softmax_forward
            _launch_parts(kernel, q, csr, parts, lambda graph, index: [x, graph, dim // 8, scale] + tail)
        ctx.mode, ctx.scale, ctx.csr, ctx.parts = mode, scale, csr, parts
        # The backward reads the same struct: wrapping five tensors costs ~0.2 ms a call, and it holds no memory
        # the saved tensors do not already hold.
        ctx.inputs = x
        ctx.save_for_backward(q, k, v, bias, gate, out, logsumexp)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        q, k, v, bias, gate, out, logsumexp = ctx.saved_tensors
        grad_q = torch.zeros_like(q)
        # Every edge lies in exactly one receiver's row, so the kernels write every entry of these two.
        grad_bias, grad_gate = torch.empty_like(bias), torch.empty_like(gate)
        csr, mode, scale, parts = ctx.csr, ctx.mode, ctx.scale, ctx.parts
        # grad_k, grad_v are scattered to senders: one zeroed pair per parallel range, summed at the end.
        scatter = [(torch.zeros_like(k), torch.zeros_like(v)) for _ in parts]
        if q.shape[0] and csr.num_edges:
            kernels = ak.make_kernels(_WARP_DTYPES[q.dtype])
            x = ctx.inputs
            saved = [_vec(out), logsumexp] if mode == "softmax" else []
            go, chunks = _vec(grad_out.contiguous()), q.shape[2] // 8
            # One struct of gradients per parallel range: each has its own grad_k, grad_v.
            grads = [_inputs(kernels, mode, grad_q, grad_k, grad_v, grad_bias, grad_gate) for grad_k, grad_v in scatter]

            def args(graph, index):
                return [x, graph, chunks, scale] + saved + [go, grads[index]]

            kernel = kernels.hcmt_backward if mode == "hcmt" else kernels.softmax_backward
            _launch_parts(kernel, q, csr, parts, args)
        else:
            grad_bias.zero_()
            grad_gate.zero_()
        grad_k, grad_v = scatter[0]
        for extra_k, extra_v in scatter[1:]:
            grad_k += extra_k
            grad_v += extra_v
        return grad_q, grad_k, grad_v, grad_bias, grad_gate, None, None, None


_MIN_EDGES_PER_PART = 20_000  # below this, a second thread costs more than it saves


def _parts(q, csr):
    """Receiver ranges [(first, count)] of about equal edge counts, one per parallel CPU launch."""
    n = q.shape[0]
    workers = min(cpu_workers(q.device, csr.num_edges, _MIN_EDGES_PER_PART), max(n, 1))
    if workers == 1:
        return [(0, n)]
    targets = torch.arange(1, workers, dtype=torch.int64) * csr.num_edges // workers
    cuts = [0] + torch.searchsorted(csr.row_ptr.long(), targets).tolist() + [n]
    return [(a, b - a) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def _launch_parts(kernel, q, csr, parts, args):
    """One launch per receiver range, threads (count, H); `args(graph, index)` gives its inputs, `graph` being
    the range's `Csr` struct."""
    jobs = [((count, q.shape[1]), args(csr.kernel_view(first), index)) for index, (first, count) in enumerate(parts)]
    launch_many(kernel, jobs, q.device)


def _vec(x: torch.Tensor, array=False):
    """[rows, H, D] as a Warp [rows, H*D/8] array of 8-vectors (no copy); a `wp.array` for struct fields."""
    return (warp_array if array else as_warp)(x.view(x.shape[0], -1, 8), _VECTORS[x.dtype])


def _inputs(kernels, mode, q, k, v, bias, gate):
    """The mode's `Inputs` struct of five tensors (the inputs or their gradients)."""
    x = kernels.HcmtInputs() if mode == "hcmt" else kernels.SoftmaxInputs()
    x.q, x.k, x.v, x.gate = (_vec(t, array=True) for t in (q, k, v, gate))
    x.bias = _vec(bias, array=True) if mode == "hcmt" else warp_array(bias)
    return x


def _check_inputs(q, k, v, gate, num_nodes):
    for name, x in (("q", q), ("k", k), ("v", v), ("edge_gate", gate)):
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            raise ValueError(f"{name} must be a [rows, H, D] tensor")
        if x.dtype != q.dtype or x.device != q.device:
            raise TypeError(f"{name} must have the dtype and device of q ({q.dtype}, {q.device})")
    if q.dtype not in _WARP_DTYPES:
        raise TypeError(f"edge_attention supports float32 and float64, got {q.dtype}")
    if q.shape[0] != num_nodes:
        raise ValueError(f"q must have num_nodes = {num_nodes} rows, got {q.shape[0]}")
    if k.shape != v.shape or k.shape[1:] != q.shape[1:]:
        raise ValueError(f"k and v must be [M, H, D] with q's H, D; got {tuple(k.shape)}, {tuple(v.shape)}")
    return q.shape[1], q.shape[2]
