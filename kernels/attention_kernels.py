"""Warp kernels of the fused edge attention: one thread per (receiver, head), edges walked in CSR order.

Channels are processed eight at a time as `vec8` values, so the compiler keeps them in SIMD registers and the
exponential is a short polynomial it can vectorise (float32) instead of a libm call per channel.

Forward: gather k[s], v[s], score, weight and accumulate out[r] in one pass; the thread owns out[r], so no
atomics. Backward: the same walk recomputes the scores (the forward stores nothing [E, H, D]), writes the
per-edge gradients, accumulates grad_q[r] in registers and scatters grad_k[s], grad_v[s] with atomic adds
(plain adds on CPU, where a launch runs its threads one after another: deterministic).

A launch covers receivers first_node .. first_node + dim - 1, so the CPU can run disjoint ranges of
receivers in parallel (each range with its own grad_k, grad_v buffers in the backward).

Layout: node arrays [N, H*C] and edge arrays [E, H*C] of vec8 (C = D / 8 chunks per head, head h owns chunks
h*C .. h*C+C-1); the softmax bias is [E, H] scalars. `row_ptr [N+1]`, `edge_ids [E]` (edge index in CSR
slot i) and `csr_senders [E]` (its sender) come from `csr.ReceiverCSR`.
"""

from __future__ import annotations

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


@wp.kernel
def hcmt_forward(
    q: wp.array2d(dtype=Any),
    k: wp.array2d(dtype=Any),
    v: wp.array2d(dtype=Any),
    bias: wp.array2d(dtype=Any),
    gate: wp.array2d(dtype=Any),
    row_ptr: wp.array(dtype=wp.int32),
    edge_ids: wp.array(dtype=wp.int32),
    csr_senders: wp.array(dtype=wp.int32),
    first_node: int,
    chunks: int,
    scale: Any,
    out: wp.array2d(dtype=Any),
):
    i, h = wp.tid()
    r = first_node + i
    first = row_ptr[r]
    last = row_ptr[r + 1]
    for j in range(h * chunks, h * chunks + chunks):
        q_r = q[r, j] * scale
        acc = type(q_r)()
        for slot in range(first, last):
            e = edge_ids[slot]
            s = csr_senders[slot]
            w = clipped_exp(wp.cw_mul(wp.cw_mul(k[s, j], q_r), bias[e, j]))
            acc += wp.cw_mul(wp.cw_mul(w, v[s, j]), gate[e, j])
        out[r, j] = acc


@wp.kernel
def hcmt_backward(
    q: wp.array2d(dtype=Any),
    k: wp.array2d(dtype=Any),
    v: wp.array2d(dtype=Any),
    bias: wp.array2d(dtype=Any),
    gate: wp.array2d(dtype=Any),
    row_ptr: wp.array(dtype=wp.int32),
    edge_ids: wp.array(dtype=wp.int32),
    csr_senders: wp.array(dtype=wp.int32),
    first_node: int,
    chunks: int,
    scale: Any,
    grad_out: wp.array2d(dtype=Any),
    grad_q: wp.array2d(dtype=Any),
    grad_k: wp.array2d(dtype=Any),
    grad_v: wp.array2d(dtype=Any),
    grad_bias: wp.array2d(dtype=Any),
    grad_gate: wp.array2d(dtype=Any),
):
    i, h = wp.tid()
    r = first_node + i
    first = row_ptr[r]
    last = row_ptr[r + 1]
    for j in range(h * chunks, h * chunks + chunks):
        q_r = q[r, j] * scale
        go = grad_out[r, j]
        acc_q = type(q_r)()
        for slot in range(first, last):
            e = edge_ids[slot]
            s = csr_senders[slot]
            k_s = k[s, j]
            v_s = v[s, j]
            b = bias[e, j]
            g = gate[e, j]
            a = wp.cw_mul(k_s, q_r)  # score before the bias
            t = wp.cw_mul(a, b)
            go_w = wp.cw_mul(go, clipped_exp(t))
            grad_gate[e, j] = wp.cw_mul(go_w, v_s)
            wp.atomic_add(grad_v, s, j, wp.cw_mul(go_w, g))
            # d out / d t = go * w * v * g where the clip is inactive, 0 where it clips
            d_t = wp.cw_mul(wp.cw_mul(wp.cw_mul(go_w, v_s), g), inside_clip(t))
            grad_bias[e, j] = wp.cw_mul(d_t, a)
            d_a = wp.cw_mul(d_t, b)
            acc_q += wp.cw_mul(d_a, k_s)
            wp.atomic_add(grad_k, s, j, wp.cw_mul(d_a, q_r))
        grad_q[r, j] = acc_q * scale


@wp.func
def head_score(q: Any, k: Any, r: int, s: int, j0: int, chunks: int, scale: Any):
    """(k[s] . q[r]) * scale over the chunks of one head."""
    score = type(scale)(0.0)
    for j in range(j0, j0 + chunks):
        score += wp.dot(k[s, j], q[r, j])
    return score * scale


@wp.kernel
def softmax_forward(
    q: wp.array2d(dtype=Any),
    k: wp.array2d(dtype=Any),
    v: wp.array2d(dtype=Any),
    bias: wp.array2d(dtype=Any),
    gate: wp.array2d(dtype=Any),
    row_ptr: wp.array(dtype=wp.int32),
    edge_ids: wp.array(dtype=wp.int32),
    csr_senders: wp.array(dtype=wp.int32),
    first_node: int,
    chunks: int,
    scale: Any,
    out: wp.array2d(dtype=Any),
    logsumexp: wp.array2d(dtype=Any),
):
    """Two walks over the incoming edges: max and sum of exp (-> logsumexp), then the weighted sum."""
    i, h = wp.tid()
    r = first_node + i
    first = row_ptr[r]
    last = row_ptr[r + 1]
    j0 = h * chunks
    top = type(scale)(0.0)
    for slot in range(first, last):
        score = head_score(q, k, r, csr_senders[slot], j0, chunks, scale) + bias[edge_ids[slot], h]
        if slot == first or score > top:
            top = score
    total = type(scale)(0.0)
    for slot in range(first, last):
        score = head_score(q, k, r, csr_senders[slot], j0, chunks, scale) + bias[edge_ids[slot], h]
        total += wp.exp(score - top)
    lse = top + wp.log(total)  # only read where the receiver has edges
    logsumexp[r, h] = lse
    for j in range(j0, j0 + chunks):
        out[r, j] = type(q[r, j])()
    for slot in range(first, last):
        e = edge_ids[slot]
        s = csr_senders[slot]
        alpha = wp.exp(head_score(q, k, r, s, j0, chunks, scale) + bias[e, h] - lse)
        for j in range(j0, j0 + chunks):
            out[r, j] += alpha * wp.cw_mul(v[s, j], gate[e, j])


@wp.kernel
def softmax_backward(
    q: wp.array2d(dtype=Any),
    k: wp.array2d(dtype=Any),
    v: wp.array2d(dtype=Any),
    bias: wp.array2d(dtype=Any),
    gate: wp.array2d(dtype=Any),
    row_ptr: wp.array(dtype=wp.int32),
    edge_ids: wp.array(dtype=wp.int32),
    csr_senders: wp.array(dtype=wp.int32),
    first_node: int,
    chunks: int,
    scale: Any,
    out: wp.array2d(dtype=Any),
    logsumexp: wp.array2d(dtype=Any),
    grad_out: wp.array2d(dtype=Any),
    grad_q: wp.array2d(dtype=Any),
    grad_k: wp.array2d(dtype=Any),
    grad_v: wp.array2d(dtype=Any),
    grad_bias: wp.array2d(dtype=Any),
    grad_gate: wp.array2d(dtype=Any),
):
    """Softmax Jacobian: d score_e = alpha_e * (go . m_e - go . out_r), alpha recomputed from logsumexp."""
    i, h = wp.tid()
    r = first_node + i
    j0 = h * chunks
    mean = type(scale)(0.0)
    for j in range(j0, j0 + chunks):
        mean += wp.dot(grad_out[r, j], out[r, j])
        grad_q[r, j] = type(q[r, j])()
    for slot in range(row_ptr[r], row_ptr[r + 1]):
        e = edge_ids[slot]
        s = csr_senders[slot]
        alpha = wp.exp(head_score(q, k, r, s, j0, chunks, scale) + bias[e, h] - logsumexp[r, h])
        d_alpha = type(scale)(0.0)
        for j in range(j0, j0 + chunks):
            go = grad_out[r, j]
            v_s = v[s, j]
            g = gate[e, j]
            d_alpha += wp.dot(go, wp.cw_mul(v_s, g))
            grad_gate[e, j] = alpha * wp.cw_mul(go, v_s)
            wp.atomic_add(grad_v, s, j, alpha * wp.cw_mul(go, g))
        d_score = alpha * (d_alpha - mean)
        grad_bias[e, h] = d_score
        for j in range(j0, j0 + chunks):
            grad_q[r, j] += (d_score * scale) * k[s, j]
            wp.atomic_add(grad_k, s, j, (d_score * scale) * q[r, j])


@wp.kernel
def csr_count(
    senders: wp.array(dtype=wp.int64),
    receivers: wp.array(dtype=wp.int64),
    row_ptr: wp.array(dtype=wp.int32),
    stats: wp.array(dtype=wp.int64),
):
    """One thread (CPU): row_ptr from the receiver counts, and stats = [min sender, max sender, min receiver,
    max receiver, 1 if receivers are sorted]. One serial pass instead of several threaded torch reductions.
    """
    n = row_ptr.shape[0] - 1
    stats[0] = senders[0]
    stats[1] = senders[0]
    stats[2] = receivers[0]
    stats[3] = receivers[0]
    stats[4] = wp.int64(1)
    for e in range(receivers.shape[0]):
        r = receivers[e]
        stats[0] = wp.min(stats[0], senders[e])
        stats[1] = wp.max(stats[1], senders[e])
        stats[2] = wp.min(stats[2], r)
        stats[3] = wp.max(stats[3], r)
        if e > 0 and r < receivers[e - 1]:
            stats[4] = wp.int64(0)
        if r >= wp.int64(0) and r < wp.int64(n):
            row_ptr[wp.int32(r) + 1] += 1
    for i in range(n):
        row_ptr[i + 1] += row_ptr[i]


@wp.kernel
def csr_scatter(
    senders: wp.array(dtype=wp.int64),
    receivers: wp.array(dtype=wp.int64),
    cursor: wp.array(dtype=wp.int32),
    edge_ids: wp.array(dtype=wp.int32),
    csr_senders: wp.array(dtype=wp.int32),
):
    """Stable counting sort of the edges by receiver, in one thread (O(E), for the CPU; CUDA sorts in torch).

    `cursor` starts as row_ptr[:-1] and ends as row_ptr[1:].
    """
    for e in range(receivers.shape[0]):
        slot = cursor[wp.int32(receivers[e])]
        cursor[wp.int32(receivers[e])] = slot + 1
        edge_ids[slot] = e
        csr_senders[slot] = wp.int32(senders[e])


def _overloads(kernel, vector_args, scalar_args=()):
    """float32 and float64 instances, declared up front so the module compiles once for both."""
    table = {}
    for scalar, vector in ((wp.float32, vec8f), (wp.float64, vec8d)):
        types = {name: wp.array2d(dtype=vector) for name in vector_args}
        types.update({name: wp.array2d(dtype=scalar) for name in scalar_args})
        types["scale"] = scalar
        table[scalar] = wp.overload(kernel, types)
    return table


_INPUTS = ("q", "k", "v", "gate")
HCMT_FORWARD = _overloads(hcmt_forward, _INPUTS + ("bias", "out"))
HCMT_BACKWARD = _overloads(
    hcmt_backward, _INPUTS + ("bias", "grad_out", "grad_q", "grad_k", "grad_v", "grad_bias", "grad_gate")
)
SOFTMAX_FORWARD = _overloads(softmax_forward, _INPUTS + ("out",), ("bias", "logsumexp"))
SOFTMAX_BACKWARD = _overloads(
    softmax_backward,
    _INPUTS + ("out", "grad_out", "grad_q", "grad_k", "grad_v", "grad_gate"),
    ("bias", "logsumexp", "grad_bias"),
)
