"""Graph building: edges, neighbour search, normalizers, features, noise, targets, masks, edge attention."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from meshsim.datasets.schema import NodeType
from meshsim.graph import (
    GroupedNormalizer,
    Normalizer,
    add_training_noise,
    contact_edges,
    edge_attention_reference,
    integrate,
    mesh_edge_features,
    node_features,
    output_mask,
    position_target,
    radius_pairs_reference,
    world_edges,
)
from meshsim.mesh import edges_from_cells

# ------------------------------------------------------------------------------------------------- normalizer


def test_normalizer_matches_numpy_on_streamed_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=[3.0, -1.0, 1e5], scale=[0.5, 2.0, 1e3], size=(rng.integers(5, 50), 3)) for _ in range(7)]
    norm = Normalizer(3).train()
    for b in batches:
        norm(torch.tensor(b, dtype=torch.float32), accumulate=True)
    data = np.concatenate([b.astype(np.float32) for b in batches]).astype(np.float64)
    np.testing.assert_allclose(norm.mean().numpy(), data.mean(0), rtol=1e-9)
    np.testing.assert_allclose(norm.std().numpy(), data.std(0), rtol=1e-6)
    x = torch.tensor(batches[0], dtype=torch.float32)
    np.testing.assert_allclose(norm(x).numpy(), (batches[0] - data.mean(0)) / data.std(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(norm.inverse(norm(x)).numpy(), x.numpy(), rtol=1e-5)


def test_normalizer_never_nan_on_constant_large_values():
    norm = Normalizer(2).train()
    for _ in range(3):
        norm(torch.full((100, 2), 2.1e9), accumulate=True)  # sum_sq/n - mean^2 rounds to <= 0 or tiny
    out = norm(torch.full((4, 2), 2.1e9))
    assert torch.isfinite(norm.std()).all() and torch.isfinite(out).all()
    assert (norm.std() >= norm.std_epsilon).all()


def test_grouped_normalizer_keeps_each_groups_statistics():
    rng = np.random.default_rng(2)
    group = torch.as_tensor(rng.integers(0, 2, size=400))
    scale = torch.tensor([[1e-3, 5e-3], [2e-5, 1e-4]], dtype=torch.float64)  # plate-like and impactor-like
    x = (torch.as_tensor(rng.normal(size=(400, 2))) * scale[group] + 0.5 * scale[group]).float()
    norm = GroupedNormalizer(2, groups=2).train()
    y = norm(x, group, accumulate=True)
    for g in (0, 1):
        rows = x[group == g].double().numpy()
        np.testing.assert_allclose(norm.groups[g].mean().numpy(), rows.mean(0), rtol=1e-6)
        np.testing.assert_allclose(y[group == g].double().std(0, unbiased=False).numpy(), [1.0, 1.0], rtol=1e-4)
    torch.testing.assert_close(norm.inverse(y, group), x, rtol=1e-5, atol=1e-9)


def test_normalizer_is_identity_before_statistics():
    x = torch.randn(5, 3)
    torch.testing.assert_close(Normalizer(3)(x), x)


def test_normalizer_stops_after_max_accumulations_and_is_frozen_in_eval():
    norm = Normalizer(1, max_accumulations=2).train()
    norm(torch.tensor([[1.0], [3.0]]), accumulate=True)
    norm(torch.tensor([[5.0]]), accumulate=True)
    norm(torch.tensor([[1000.0]]), accumulate=True)  # past max_accumulations: ignored
    assert norm.mean().item() == pytest.approx(3.0)
    fresh = Normalizer(1).eval()
    fresh(torch.tensor([[7.0]]), accumulate=True)  # eval mode: frozen
    assert fresh.count.item() == 0


def test_normalizer_statistics_live_in_state_dict():
    norm = Normalizer(2).train()
    norm(torch.randn(10, 2) * 4 + 1, accumulate=True)
    copy = Normalizer(2)
    copy.load_state_dict(norm.state_dict())
    assert set(norm.state_dict()) == {"count", "accumulations", "sum", "sum_squared"}
    torch.testing.assert_close(copy.mean(), norm.mean())
    torch.testing.assert_close(copy.std(), norm.std())


# ------------------------------------------------------------------------------------------------------ edges


def _brute_pairs(pos, radius, senders=None, receivers=None, batch=None, exclude=()):
    n = len(pos)
    out = []
    for s in range(n):
        for r in range(n):
            if s == r or (senders is not None and not senders[s]) or (receivers is not None and not receivers[r]):
                continue
            if batch is not None and batch[s] != batch[r]:
                continue
            if np.linalg.norm(pos[s] - pos[r]) < radius and (s, r) not in exclude:
                out.append((s, r))
    return out


def test_radius_pairs_reference_matches_brute_force():
    rng = np.random.default_rng(1)
    pos = rng.uniform(size=(60, 3))
    batch = np.repeat([0, 1], 30)
    smask, rmask = rng.uniform(size=60) < 0.5, rng.uniform(size=60) < 0.7
    exclude = torch.tensor([[0, 1, 2], [1, 2, 3]])
    got = radius_pairs_reference(torch.tensor(pos), 0.3, sender_mask=torch.tensor(smask),
                                 receiver_mask=torch.tensor(rmask), batch=torch.tensor(batch),
                                 exclude_edges=exclude, chunk=7)
    want = _brute_pairs(pos, 0.3, smask, rmask, batch, exclude={(0, 1), (1, 2), (2, 3)})
    assert [tuple(p) for p in got.numpy().T] == want


def _plate_and_ball():
    xs, ys = np.meshgrid(np.linspace(0, 1, 6), np.linspace(0, 0.2, 3))
    plate = np.stack([xs.ravel(), ys.ravel()], 1)
    ball = np.array([[0.5, 0.25], [0.6, 0.3], [0.5, 0.35]])
    pos = torch.tensor(np.concatenate([plate, ball]), dtype=torch.float64)
    node_type = torch.zeros(len(pos), dtype=torch.int64)
    node_type[len(plate):] = NodeType.OBSTACLE
    node_type[0] = NodeType.HANDLE
    return pos, node_type


def test_contact_edges_link_only_obstacle_and_normal_both_ways():
    pos, node_type = _plate_and_ball()
    edges = contact_edges(pos, node_type, 0.12).numpy()
    pairs = {tuple(e) for e in edges.T}
    assert pairs and all((b, a) in pairs for a, b in pairs)
    types = {(int(node_type[a]), int(node_type[b])) for a, b in pairs}
    assert types == {(NodeType.OBSTACLE, NodeType.NORMAL), (NodeType.NORMAL, NodeType.OBSTACLE)}
    brute = {p for p in _brute_pairs(pos.numpy(), 0.12) if {int(node_type[p[0]]), int(node_type[p[1]])} ==
             {int(NodeType.OBSTACLE), int(NodeType.NORMAL)}}
    assert pairs == brute


def test_world_edges_exclude_mesh_edges():
    pos, _ = _plate_and_ball()
    mesh = torch.from_numpy(edges_from_cells(np.array([[0, 1, 6], [1, 7, 6]])))
    got = {tuple(e) for e in world_edges(pos, mesh, 0.25).numpy().T}
    mesh_pairs = {tuple(e) for e in mesh.numpy().T}
    assert got == set(_brute_pairs(pos.numpy(), 0.25)) - mesh_pairs and not got & mesh_pairs


def test_graph_features_translation_invariant_and_rotation_equivariant():
    pos, node_type = _plate_and_ball()
    prev = pos - 0.01
    edges = torch.from_numpy(edges_from_cells(np.array([[0, 1, 6], [1, 7, 6], [18, 19, 20]])))
    material = torch.ones(len(pos), 2)
    theta = 0.7
    rot = torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]], dtype=pos.dtype)
    shift = torch.tensor([3.0, -2.0], dtype=pos.dtype)
    feats = mesh_edge_features(pos, pos, edges)
    moved = mesh_edge_features(pos @ rot.T + shift, pos, edges)
    torch.testing.assert_close(mesh_edge_features(pos + shift, pos, edges), feats)
    torch.testing.assert_close(moved[:, 2], feats[:, 2])  # |dx_world| invariant under rotation
    torch.testing.assert_close(moved[:, :2], feats[:, :2] @ rot.T)  # dx_world rotates with the body
    torch.testing.assert_close(node_features(prev + shift, pos + shift, node_type, material),
                               node_features(prev, pos, node_type, material))
    base = {tuple(e) for e in contact_edges(pos, node_type, 0.12).numpy().T}
    assert base == {tuple(e) for e in contact_edges(pos @ rot.T + shift, node_type, 0.12).numpy().T}


def test_node_features_layout():
    pos, node_type = _plate_and_ball()
    feats = node_features(pos - 0.5, pos, node_type, torch.full((len(pos), 2), 7.0), torch.ones_like(pos))
    assert feats.shape == (len(pos), 2 + NodeType.SIZE + 2 + 2)
    torch.testing.assert_close(feats[:, :2], torch.full_like(pos, 0.5))
    assert feats[0, 2 + NodeType.HANDLE] == 1 and feats[-1, 2 + NodeType.OBSTACLE] == 1
    assert feats[:, 2:11].sum(1).eq(1).all()


# -------------------------------------------------------------------------------- noise, targets and masks


def test_noise_only_on_normal_nodes_and_gamma_moves_target():
    pos, node_type = _plate_and_ball()
    nxt = pos + 0.1
    gen = torch.Generator().manual_seed(0)
    cur, target = add_training_noise(pos, nxt, node_type, 0.01, 1.0, gen)
    noise = cur - pos
    normal = node_type == NodeType.NORMAL
    assert noise[~normal].abs().max() == 0 and noise[normal].abs().min() > 0
    assert noise[normal].std().item() == pytest.approx(0.01, rel=0.35)
    torch.testing.assert_close(target, nxt)  # gamma = 1: x_{t+1} unchanged, the target absorbs the noise
    cur, target = add_training_noise(pos, nxt, node_type, 0.01, 0.1, torch.Generator().manual_seed(0))
    torch.testing.assert_close(target - nxt, 0.9 * (cur - pos))


@pytest.mark.parametrize("order", ["delta", "accel"])
def test_targets_integrate_back(order):
    prev, cur, nxt = torch.randn(3, 10, 2, dtype=torch.float64).unbind(0)
    torch.testing.assert_close(integrate(prev, cur, position_target(prev, cur, nxt, order), order), nxt)


def test_output_mask_semantics():
    node_type = torch.tensor([NodeType.NORMAL, NodeType.OBSTACLE, NodeType.HANDLE, NodeType.SYMMETRIC])
    mask = output_mask(node_type, 2, (NodeType.NORMAL, NodeType.OBSTACLE))
    assert mask.tolist() == [[True, True], [True, True], [False, False], [False, True]]
    mask = output_mask(node_type, 3, (NodeType.NORMAL,))
    assert mask.tolist() == [[True] * 3, [False] * 3, [False] * 3, [False, True, True]]


# ---------------------------------------------------------------------------------------------- attention


def test_edge_attention_reference_matches_loop():
    gen = torch.Generator().manual_seed(3)
    n, heads, d = 5, 2, 4
    q, k, v = (torch.randn(n, heads, d, generator=gen, dtype=torch.float64) for _ in range(3))
    edges = torch.tensor([[0, 1, 2, 3, 4, 0], [1, 1, 1, 2, 2, 4]])
    bias, gate = (torch.randn(edges.shape[1], heads, d, generator=gen, dtype=torch.float64) * 3 for _ in range(2))
    hcmt = edge_attention_reference(q, k, v, bias, gate, edges[0], edges[1], n, "hcmt")
    soft = edge_attention_reference(q, k, v, bias, gate, edges[0], edges[1], n, "softmax")
    want_h, want_s = torch.zeros_like(q), torch.zeros_like(q)
    for r in range(n):
        incoming = [e for e in range(edges.shape[1]) if edges[1, e] == r]
        if not incoming:
            continue
        scores = [k[edges[0, e]] * q[r] / math.sqrt(d) * bias[e] for e in incoming]
        for e, s in zip(incoming, scores):
            want_h[r] += torch.exp(s.clamp(-2, 2)) * v[edges[0, e]] * gate[e]
        logits = torch.stack([(k[edges[0, e]] * q[r]).sum(-1) / math.sqrt(d) + bias[e].sum(-1) for e in incoming])
        alpha = torch.softmax(logits, dim=0)
        for a, e in zip(alpha, incoming):
            want_s[r] += a[:, None] * v[edges[0, e]] * gate[e]
    torch.testing.assert_close(hcmt, want_h)
    torch.testing.assert_close(soft, want_s)
    assert hcmt[0].abs().max() == 0 and hcmt[3].abs().max() == 0  # no incoming edges


def test_dispatch_to_kernels_matches_reference_when_available():
    """The models call meshsim.kernels when it provides the ops; results must equal the torch oracles."""
    import meshsim.kernels as kernels

    from meshsim.graph import edge_attention, radius_pairs

    if not hasattr(kernels, "radius_pairs") or not hasattr(kernels, "edge_attention"):
        pytest.skip("meshsim.kernels does not export radius_pairs/edge_attention yet")
    pos, node_type = _plate_and_ball()
    pos = pos.float()
    got = {tuple(p) for p in contact_edges(pos, node_type, 0.12).numpy().T}
    obstacle, normal = node_type == NodeType.OBSTACLE, node_type == NodeType.NORMAL
    one = radius_pairs_reference(pos, 0.12, sender_mask=obstacle, receiver_mask=normal)
    assert got == {tuple(p) for p in one.numpy().T} | {tuple(p) for p in one.flip(0).numpy().T}
    assert {tuple(p) for p in radius_pairs(pos, 0.2).numpy().T} == {
        tuple(p) for p in radius_pairs_reference(pos, 0.2).numpy().T}
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(21, 2, 8, generator=gen) for _ in range(3))
    edges = radius_pairs_reference(pos, 0.25)
    bias, gate = (torch.randn(edges.shape[1], 2, 8, generator=gen) for _ in range(2))
    for mode in ("hcmt", "softmax"):
        torch.testing.assert_close(
            edge_attention(q, k, v, bias, gate, edges[0], edges[1], 21, mode=mode),
            edge_attention_reference(q, k, v, bias, gate, edges[0], edges[1], 21, mode), rtol=1e-4, atol=1e-5)
