"""edge_attention against the composed-torch reference (values, gradients) and finite differences."""

import pytest
import torch
from meshsim.kernels import edge_attention, receiver_csr
from meshsim.kernels.reference import edge_attention_reference

MODES = ["hcmt", "softmax"]


def make_graph(n, e, heads, dim, dtype=torch.float64, device="cpu", seed=0, spread=1.0, bias_shape=None):
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return (torch.randn(*shape, generator=gen, dtype=dtype) * spread).to(device).requires_grad_()

    q, k, v = rand(n, heads, dim), rand(n, heads, dim), rand(n, heads, dim)
    bias, gate = rand(*(bias_shape or (e, heads, dim))), rand(e, heads, dim)
    senders = torch.randint(0, n, (e,), generator=gen).to(device)
    receivers = torch.randint(0, max(n - 3, 1), (e,), generator=gen).to(device)  # last nodes receive nothing
    return (q, k, v, bias, gate), senders, receivers


def compare(inputs, senders, receivers, n, mode, rtol, atol):
    got = edge_attention(*inputs, senders, receivers, n, mode)
    ref = edge_attention_reference(*inputs, senders, receivers, n, mode)
    torch.testing.assert_close(got, ref, rtol=rtol, atol=atol)
    grad_out = torch.randn_like(ref)
    g_got = torch.autograd.grad(got, inputs, grad_out)
    g_ref = torch.autograd.grad(ref, inputs, grad_out)
    for a, b in zip(g_got, g_ref):  # atol relative to the gradient's scale: float32 sums of many terms
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol * max(1.0, float(b.abs().max())))
    return got


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dim", [32, 8, 5])  # 5: padded to 8 channels inside
def test_matches_reference_float64(device, mode, dim):
    inputs, s, r = make_graph(40, 200, 4, dim, device=device, seed=dim)
    compare(inputs, s, r, 40, mode, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_matches_reference_float32_with_clipping(mode):
    # HCMT spread 2: many scores beyond +-2, so both clipped and unclipped channels are exercised
    spread = 2.0 if mode == "hcmt" else 1.0
    inputs, s, r = make_graph(300, 3000, 4, 32, dtype=torch.float32, seed=1, spread=spread)
    compare(inputs, s, r, 300, mode, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("mode", MODES)
def test_gradcheck_float64(mode):
    # Repeated edges (3 -> 0 twice), a self loop, nodes with no incoming edge (4, 5) and, for HCMT,
    # channels clipped on both sides (scores far from the kinks at +-2 so finite differences are clean).
    n, heads, dim = 6, 2, 8
    s = torch.tensor([3, 3, 1, 2, 0, 1, 2, 2])
    r = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3])
    gen = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(n, heads, dim, generator=gen, dtype=torch.float64) for _ in range(3))
    bias = torch.randn(8, heads, dim, generator=gen, dtype=torch.float64) * 4
    gate = torch.randn(8, heads, dim, generator=gen, dtype=torch.float64)
    t = k[s] * q[r] / dim**0.5 * bias
    if mode == "hcmt":
        assert bool((t > 2).any()) and bool((t < -2).any())
        assert float(((t.abs() - 2).abs()).min()) > 1e-4
    inputs = [x.requires_grad_() for x in (q, k, v, bias, gate)]
    assert torch.autograd.gradcheck(lambda *x: edge_attention(*x, s, r, n, mode), inputs)


def test_clipped_channels_get_no_score_gradient():
    inputs, s, r = make_graph(30, 120, 2, 8, seed=2, spread=3.0)
    q, k, v, bias, gate = inputs
    out = edge_attention(*inputs, s, r, 30, "hcmt")
    (grad_bias,) = torch.autograd.grad(out.sum(), [bias])
    t = k[s] * q[r] / 8**0.5 * bias
    clipped = t.abs() > 2
    assert bool(clipped.any()) and bool((grad_bias[clipped] == 0).all())
    assert bool((grad_bias[~clipped] != 0).all())


@pytest.mark.parametrize("bias_shape", [(300, 4), (300, 4, 8), None])
def test_softmax_bias_shapes(bias_shape):
    inputs, s, r = make_graph(50, 300, 4, 8, seed=3, bias_shape=bias_shape or (300, 4, 8))
    if bias_shape is None:
        inputs = (*inputs[:3], None, inputs[4])
        got = edge_attention(*inputs, s, r, 50, "softmax")
        ref = edge_attention_reference(*inputs, s, r, 50, "softmax")
        torch.testing.assert_close(got, ref)
    else:
        compare(inputs, s, r, 50, "softmax", rtol=1e-10, atol=1e-12)


def test_softmax_is_stable_for_huge_scores_and_sums_weights_to_one():
    inputs, s, r = make_graph(20, 100, 2, 8, seed=4, spread=30.0)  # scores ~ 1e3: exp overflows unshifted
    q, k, v, bias, gate = inputs
    got = compare(inputs, s, r, 20, "softmax", rtol=1e-8, atol=1e-8)
    assert bool(torch.isfinite(got).all())
    ones = edge_attention(q, k, torch.ones_like(v), bias, torch.ones_like(gate), s, r, 20, "softmax")
    has_edges = torch.bincount(r, minlength=20) > 0
    torch.testing.assert_close(ones[has_edges], torch.ones_like(ones[has_edges]))
    assert bool((ones[~has_edges] == 0).all())


def test_csr_is_reusable_and_checked():
    inputs, s, r = make_graph(40, 160, 2, 8, seed=6)
    csr = receiver_csr(s, r, 40)
    a = edge_attention(*inputs, s, r, 40, "hcmt", csr=csr)
    b = edge_attention(*inputs, s, r, 40, "hcmt")
    assert torch.equal(a, b)
    with pytest.raises(ValueError):
        edge_attention(*inputs, s, r, 40, "hcmt", csr=receiver_csr(s[:-1], r[:-1], 40))
    order = torch.argsort(r, stable=True)  # already receiver-sorted edges take the no-permutation path
    sorted_inputs = (*inputs[:3], inputs[3][order], inputs[4][order])
    c = edge_attention(*sorted_inputs, s[order], r[order], 40, "hcmt")
    torch.testing.assert_close(c, a)


@pytest.mark.parametrize("mode", MODES)
def test_no_edges_gives_zeros_and_zero_gradients(mode):
    inputs, _, _ = make_graph(5, 0, 2, 8)
    empty = torch.zeros(0, dtype=torch.long)
    out = edge_attention(*inputs, empty, empty, 5, mode)
    assert out.shape == (5, 2, 8) and bool((out == 0).all())
    grads = torch.autograd.grad(out.sum(), [inputs[0], inputs[1]])
    assert all(bool((g == 0).all()) for g in grads)


def test_invalid_inputs_raise():
    inputs, s, r = make_graph(10, 20, 2, 8)
    q, k, v, bias, gate = inputs
    with pytest.raises(ValueError):
        edge_attention(q, k, v, bias, gate, s, r, 10, "dot")
    with pytest.raises(ValueError):
        edge_attention(q, k, v, bias, gate, s, r, 11, "hcmt")  # q rows != num_nodes
    with pytest.raises(ValueError):
        edge_attention(q, k, v, bias[:, :, :4], gate, s, r, 10, "hcmt")
    with pytest.raises(ValueError):
        edge_attention(q, k, v, bias, gate, s, r + 10, 10, "hcmt")  # receivers out of range
    with pytest.raises(TypeError):
        edge_attention(q.half(), k, v, bias, gate, s, r, 10, "hcmt")


@pytest.mark.parametrize("mode", MODES)
def test_parallel_cpu_ranges_match_reference(mode):
    from meshsim.kernels.attention import _parts
    from meshsim.kernels.csr import receiver_csr as csr_of

    # 50,000 edges: the CPU path splits the receivers over two threads (private grad_k, grad_v buffers).
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        inputs, s, r = make_graph(2000, 50_000, 1, 8, dtype=torch.float32, seed=8)
        assert len(_parts(inputs[0], csr_of(s, r, 2000))) == 2
        compare(inputs, s, r, 2000, mode, rtol=2e-5, atol=2e-5)
    finally:
        torch.set_num_threads(threads)
