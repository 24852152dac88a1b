"""Warp kernels of the fused edge attention: one thread per (receiver, head), edges walked in CSR order.

Channels are processed eight at a time as `vec8` values, so the compiler keeps them in SIMD registers and the
exponential is a short polynomial it can vectorise (float32) instead of a libm call per channel.

Forward: gather k[s], v[s], score, weight and accumulate out[r] in one pass; the thread owns out[r], so no
atomics. Backward: the same walk recomputes the scores (the forward stores nothing [E, H, D]), writes the
per-edge gradients, accumulates grad_q[r] in registers and scatters grad_k[s], grad_v[s] with atomic adds
(plain adds on CPU, where a launch runs its threads one after another: deterministic).

Kernel arguments come in two structs. `Csr` is the graph: `row_ptr [N+1]`, `edge_ids [E]` (edge index in CSR
slot i) and `senders [E]` (its sender) from `csr.ReceiverCSR`, and the launch's first receiver: a launch
covers receivers first .. first + dim - 1, so the CPU can run disjoint ranges of receivers in parallel (each
range with its own grad_k, grad_v buffers in the backward). `Inputs` holds the five differentiable tensors
q, k, v, bias, gate; the backward gets a second `Inputs` for their gradients, which have the same layout.

Layout: node arrays [N, H*C] and edge arrays [E, H*C] of vec8 (C = D / 8 chunks per head, head h owns chunks
h*C .. h*C+C-1); the softmax bias is [E, H] scalars, so each mode has its own `Inputs`. Structs cannot be
generic over the scalar type, so `make_kernels(scalar)` builds the kernels per scalar type, each in its own
Warp module: float32 work never compiles the float64 kernels the gradient tests use.
"""

import functools
from types import SimpleNamespace
from typing import Any

import warp as wp

wp.set_module_options({"enable_backward": False})  # gradients are written by hand below

CLIP = 2.0  # HCMT clips the per-channel score to [-2, 2]
vec8f = wp.types.vector(length=8, dtype=wp.float32)
vec8d = wp.types.vector(length=8, dtype=wp.float64)


@wp.func
def clipped_exp(t: vec8f) -> vec8f:
    """exp(clip(t, -2, 2)) to a few float32 ulp: Taylor degree 10 of exp(x/2) on [-1, 1], then squared.

    The remainder is below 1e-8 relative, and the polynomial needs no libm call, so it vectorises.
    """
    w = vec8f()
    for i in range(8):
        x = wp.clamp(t[i], -2.0, 2.0) * 0.5
        p = 2.7557319e-7
        p = p * x + 2.7557319e-6
        p = p * x + 2.4801587e-5
        p = p * x + 1.9841270e-4
        p = p * x + 1.3888889e-3
        p = p * x + 8.3333333e-3
        p = p * x + 4.1666667e-2
        p = p * x + 1.6666667e-1
        p = p * x + 0.5
        p = p * x + 1.0
        p = p * x + 1.0
        w[i] = p * p
    return w


@wp.func
def clipped_exp(t: vec8d) -> vec8d:  # noqa: F811 (Warp overload by argument type)
    """float64 (tests, gradcheck): libm exp for full precision."""
    w = vec8d()
    for i in range(8):
        w[i] = wp.exp(wp.clamp(t[i], wp.float64(-2.0), wp.float64(2.0)))
    return w


@wp.func
def inside_clip(t: Any):
    """1 where -2 <= t <= 2 (torch.clamp passes the gradient at the bounds too), 0 where clipped."""
    m = type(t)()
    for i in range(8):
        if t[i] >= type(t[0])(-2.0) and t[i] <= type(t[0])(2.0):
            m[i] = type(t[0])(1.0)
    return m


@wp.struct
class Csr:
    """The edges into each receiver (`csr.ReceiverCSR`) and the first receiver of one launch."""

    row_ptr: wp.array(dtype=wp.int32)  # [N + 1]: receiver r owns CSR slots row_ptr[r] .. row_ptr[r+1] - 1
    edge_ids: wp.array(dtype=wp.int32)  # [E] edge index of each slot
    senders: wp.array(dtype=wp.int32)  # [E] sender of each slot
    first: wp.int32  # receiver of launch row 0


@wp.func
def receiver_slots(csr: Csr, i: int):
    """Receiver of launch row i and its CSR slots [begin, end)."""
    r = csr.first + i
    return r, csr.row_ptr[r], csr.row_ptr[r + 1]


@wp.func
def head_score(q: Any, k: Any, r: int, s: int, j0: int, chunks: int, scale: Any):
    """(k[s] . q[r]) * scale over the chunks of one head."""
    score = type(scale)(0.0)
    for j in range(j0, j0 + chunks):
        score += wp.dot(k[s, j], q[r, j])
    return score * scale


def _inputs_struct(V, bias_type):
    @wp.struct
    class Inputs:
        """q [N, H*C], k, v [M, H*C], gate [E, H*C] of 8-vectors; bias per mode (see `make_kernels`)."""

        q: wp.array2d(dtype=V)
        k: wp.array2d(dtype=V)
        v: wp.array2d(dtype=V)
        bias: bias_type
        gate: wp.array2d(dtype=V)

    return Inputs


@functools.cache
def make_kernels(scalar) -> SimpleNamespace:
    """The four attention kernels for one scalar type (wp.float32 or wp.float64) and their `Inputs` structs."""
    V = vec8f if scalar == wp.float32 else vec8d
    module = f"meshsim_attention_{scalar.__name__}"
    wp.set_module_options({"enable_backward": False}, module=module)
    HcmtInputs = _inputs_struct(V, wp.array2d(dtype=V))  # bias per channel: [E, H*C] of 8-vectors
    SoftmaxInputs = _inputs_struct(V, wp.array2d(dtype=scalar))  # bias per head: [E, H]

    @wp.kernel(module=module)
    def hcmt_forward(x: HcmtInputs, csr: Csr, chunks: int, scale: scalar, out: wp.array2d(dtype=V)):
        i, h = wp.tid()
        r, first, last = receiver_slots(csr, i)
        for j in range(h * chunks, h * chunks + chunks):
            q_r = x.q[r, j] * scale
            acc = V()
            for slot in range(first, last):
                e = csr.edge_ids[slot]
                s = csr.senders[slot]
                w = clipped_exp(wp.cw_mul(wp.cw_mul(x.k[s, j], q_r), x.bias[e, j]))
                acc += wp.cw_mul(wp.cw_mul(w, x.v[s, j]), x.gate[e, j])
            out[r, j] = acc

    @wp.kernel(module=module)
    def hcmt_backward(
        x: HcmtInputs, csr: Csr, chunks: int, scale: scalar, grad_out: wp.array2d(dtype=V), grad: HcmtInputs
    ):
        i, h = wp.tid()
        r, first, last = receiver_slots(csr, i)
        for j in range(h * chunks, h * chunks + chunks):
            q_r = x.q[r, j] * scale
            go = grad_out[r, j]
            acc_q = V()
            for slot in range(first, last):
                e = csr.edge_ids[slot]
                s = csr.senders[slot]
                k_s = x.k[s, j]
                v_s = x.v[s, j]
                b = x.bias[e, j]
                g = x.gate[e, j]
                a = wp.cw_mul(k_s, q_r)  # score before the bias
                t = wp.cw_mul(a, b)
                go_w = wp.cw_mul(go, clipped_exp(t))
                grad.gate[e, j] = wp.cw_mul(go_w, v_s)
                wp.atomic_add(grad.v, s, j, wp.cw_mul(go_w, g))
                # d out / d t = go * w * v * g where the clip is inactive, 0 where it clips
                d_t = wp.cw_mul(wp.cw_mul(wp.cw_mul(go_w, v_s), g), inside_clip(t))
                grad.bias[e, j] = wp.cw_mul(d_t, a)
                d_a = wp.cw_mul(d_t, b)
                acc_q += wp.cw_mul(d_a, k_s)
                wp.atomic_add(grad.k, s, j, wp.cw_mul(d_a, q_r))
            grad.q[r, j] = acc_q * scale

    @wp.kernel(module=module)
    def softmax_forward(
        x: SoftmaxInputs, csr: Csr, chunks: int, scale: scalar, out: wp.array2d(dtype=V),
        logsumexp: wp.array2d(dtype=scalar),
    ):
        """Two walks over the incoming edges: max and sum of exp (-> logsumexp), then the weighted sum."""
        i, h = wp.tid()
        r, first, last = receiver_slots(csr, i)
        j0 = h * chunks
        top = scalar(0.0)
        for slot in range(first, last):
            score = head_score(x.q, x.k, r, csr.senders[slot], j0, chunks, scale) + x.bias[csr.edge_ids[slot], h]
            if slot == first or score > top:
                top = score
        total = scalar(0.0)
        for slot in range(first, last):
            score = head_score(x.q, x.k, r, csr.senders[slot], j0, chunks, scale) + x.bias[csr.edge_ids[slot], h]
            total += wp.exp(score - top)
        lse = top + wp.log(total)  # only read where the receiver has edges
        logsumexp[r, h] = lse
        for j in range(j0, j0 + chunks):
            out[r, j] = V()
        for slot in range(first, last):
            e = csr.edge_ids[slot]
            s = csr.senders[slot]
            alpha = wp.exp(head_score(x.q, x.k, r, s, j0, chunks, scale) + x.bias[e, h] - lse)
            for j in range(j0, j0 + chunks):
                out[r, j] += alpha * wp.cw_mul(x.v[s, j], x.gate[e, j])

    @wp.kernel(module=module)
    def softmax_backward(
        x: SoftmaxInputs, csr: Csr, chunks: int, scale: scalar, out: wp.array2d(dtype=V),
        logsumexp: wp.array2d(dtype=scalar), grad_out: wp.array2d(dtype=V), grad: SoftmaxInputs,
    ):
        """Softmax Jacobian: d score_e = alpha_e * (go . m_e - go . out_r), alpha recomputed from logsumexp."""
        i, h = wp.tid()
        r, first, last = receiver_slots(csr, i)
        j0 = h * chunks
        mean = scalar(0.0)
        for j in range(j0, j0 + chunks):
            mean += wp.dot(grad_out[r, j], out[r, j])
            grad.q[r, j] = V()
        for slot in range(first, last):
            e = csr.edge_ids[slot]
            s = csr.senders[slot]
            alpha = wp.exp(head_score(x.q, x.k, r, s, j0, chunks, scale) + x.bias[e, h] - logsumexp[r, h])
            d_alpha = scalar(0.0)
            for j in range(j0, j0 + chunks):
                go = grad_out[r, j]
                v_s = x.v[s, j]
                g = x.gate[e, j]
                d_alpha += wp.dot(go, wp.cw_mul(v_s, g))
                grad.gate[e, j] = alpha * wp.cw_mul(go, v_s)
                wp.atomic_add(grad.v, s, j, alpha * wp.cw_mul(go, g))
            d_score = alpha * (d_alpha - mean)
            grad.bias[e, h] = d_score
            for j in range(j0, j0 + chunks):
                grad.q[r, j] += (d_score * scale) * x.k[s, j]
                wp.atomic_add(grad.k, s, j, (d_score * scale) * x.q[r, j])

    return SimpleNamespace(
        hcmt_forward=hcmt_forward, hcmt_backward=hcmt_backward, softmax_forward=softmax_forward,
        softmax_backward=softmax_backward, HcmtInputs=HcmtInputs, SoftmaxInputs=SoftmaxInputs, vec=V,
    )


@wp.struct
class Edges:
    """An edge list s -> r in input order, int64 as torch indexes it: what the CSR is built from."""

    senders: wp.array(dtype=wp.int64)
    receivers: wp.array(dtype=wp.int64)


@wp.kernel
def csr_count(edges: Edges, row_ptr: wp.array(dtype=wp.int32), stats: wp.array(dtype=wp.int64)):
    """One thread (CPU): row_ptr from the receiver counts, and stats = [min sender, max sender, min receiver,
    max receiver, 1 if receivers are sorted]. One serial pass instead of several threaded torch reductions.
    """
    n = row_ptr.shape[0] - 1
    stats[0] = edges.senders[0]
    stats[1] = edges.senders[0]
    stats[2] = edges.receivers[0]
    stats[3] = edges.receivers[0]
    stats[4] = wp.int64(1)
    for e in range(edges.receivers.shape[0]):
        r = edges.receivers[e]
        stats[0] = wp.min(stats[0], edges.senders[e])
        stats[1] = wp.max(stats[1], edges.senders[e])
        stats[2] = wp.min(stats[2], r)
        stats[3] = wp.max(stats[3], r)
        if e > 0 and r < edges.receivers[e - 1]:
            stats[4] = wp.int64(0)
        if r >= wp.int64(0) and r < wp.int64(n):
            row_ptr[wp.int32(r) + 1] += 1
    for i in range(n):
        row_ptr[i + 1] += row_ptr[i]


@wp.kernel
def csr_scatter(edges: Edges, cursor: wp.array(dtype=wp.int32), csr: Csr):
    """Stable counting sort of the edges by receiver into csr.edge_ids and csr.senders, in one thread (O(E),
    for the CPU; CUDA sorts in torch).

    `cursor` starts as row_ptr[:-1] and ends as row_ptr[1:].
    """
    for e in range(edges.receivers.shape[0]):
        r = wp.int32(edges.receivers[e])
        slot = cursor[r]
        cursor[r] = slot + 1
        csr.edge_ids[slot] = e
        csr.senders[slot] = wp.int32(edges.senders[e])
