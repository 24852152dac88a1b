"""radius_pairs / contact_pairs against the brute-force N x N search."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from meshsim.kernels import contact_pairs, radius_pairs
from meshsim.kernels.reference import radius_pairs_reference


def assert_same(pos, radius, **kw):
    got = radius_pairs(pos, radius, **kw)
    ref = radius_pairs_reference(pos.cpu(), radius, **{k: v.cpu() if v is not None else v for k, v in kw.items()})
    assert got.dtype == torch.long and got.device == pos.device
    assert torch.equal(got.cpu(), ref)
    return got


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("radius", [0.0, 1e-4, 0.07, 0.3, 5.0, math.inf])
def test_matches_brute_force(device, dim, radius):
    pos = torch.rand(400, dim, generator=torch.Generator().manual_seed(dim)).to(device)
    got = assert_same(pos, radius)
    if radius >= 5.0:  # every ordered pair
        assert got.shape[1] == 400 * 399
    if radius <= 1e-4:
        assert got.shape[1] == 0


@pytest.mark.parametrize("dim", [2, 3])
def test_order_is_by_receiver_then_sender_and_two_way(dim):
    pos = torch.rand(300, dim, generator=torch.Generator().manual_seed(1))
    s, r = radius_pairs(pos, 0.2)
    key = r * 300 + s
    assert bool((key[1:] > key[:-1]).all())  # strictly increasing: sorted, no duplicates
    assert bool((s != r).all())
    assert torch.equal(torch.sort(s * 300 + r).values, torch.sort(key).values)  # (i, j) comes with (j, i)
    assert torch.equal(radius_pairs(pos, 0.2), torch.stack([s, r]))  # deterministic


def test_points_exactly_at_the_radius_are_excluded():
    # A grid of spacing 0.5 (exact in binary): axis neighbours lie exactly 0.5 apart.
    g = torch.arange(4, dtype=torch.float64) * 0.5
    pos = torch.cartesian_prod(g, g, g)
    assert radius_pairs(pos, 0.5).shape[1] == 0
    just_above = radius_pairs(pos, 0.5 + 1e-12)
    assert just_above.shape[1] == 2 * 3 * 4 * 4 * 3  # axis-aligned neighbour pairs, both ways
    assert_same(pos.float(), 0.5)
    assert_same(pos, math.sqrt(0.5))  # diagonal neighbours at sqrt(0.5) (rounded): same rule as brute force


def test_coincident_points_pair_with_each_other_not_themselves():
    pos = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    got = assert_same(pos, 0.1)
    assert got.shape[1] == 6
    assert_same(pos, 5e-324)  # subnormal radius: squared it underflows to 0, as in the float64 brute force


@pytest.mark.parametrize("dim", [2, 3])
def test_masks_batches_and_exclusions(dim):
    gen = torch.Generator().manual_seed(7)
    n = 500
    pos = torch.rand(n, dim, generator=gen)
    send = torch.rand(n, generator=gen) < 0.4
    recv = torch.rand(n, generator=gen) < 0.6
    batch = torch.randint(0, 4, (n,), generator=gen)  # unsorted graph ids, graphs overlap in space
    mesh = radius_pairs(pos, 0.05)
    assert_same(pos, 0.15, sender_mask=send, receiver_mask=recv)  # one-sided search
    assert_same(pos, 0.15, sender_mask=send, receiver_mask=send)  # symmetric search on a subset
    assert_same(pos, 0.15, batch=batch)
    assert_same(pos, 0.15, exclude_edges=mesh)
    got = assert_same(pos, 0.15, sender_mask=send, receiver_mask=recv, batch=batch, exclude_edges=mesh[:, ::2])
    assert bool((batch[got[0]] == batch[got[1]]).all())


def test_world_edges_are_all_pairs_minus_mesh_edges():
    pos = torch.rand(200, 3, generator=torch.Generator().manual_seed(3))
    mesh = radius_pairs(pos, 0.1)
    world = radius_pairs(pos, 0.25, exclude_edges=mesh)
    every = radius_pairs(pos, 0.25)
    assert world.shape[1] == every.shape[1] - mesh.shape[1]
    keys = set(map(tuple, world.T.tolist()))
    assert not keys & set(map(tuple, mesh.T.tolist()))


def test_empty_and_all_false_masks():
    pos = torch.rand(50, 3)
    none = torch.zeros(50, dtype=torch.bool)
    assert radius_pairs(pos, 1.0, sender_mask=none).shape == (2, 0)
    assert radius_pairs(pos, 1.0, receiver_mask=none).shape == (2, 0)
    assert contact_pairs(pos, 1.0, none, ~none).shape == (2, 0)
    assert radius_pairs(torch.empty(0, 2), 1.0).shape == (2, 0)
    assert radius_pairs(torch.zeros(1, 3), 1.0).shape == (2, 0)


@pytest.mark.parametrize("dim", [2, 3])
def test_contact_pairs_are_both_directions_between_groups(dim):
    gen = torch.Generator().manual_seed(11)
    pos = torch.rand(300, dim, generator=gen)
    obstacle = torch.rand(300, generator=gen) < 0.2
    normal = ~obstacle
    got = contact_pairs(pos, 0.2, obstacle, normal)
    a = radius_pairs_reference(pos, 0.2, sender_mask=obstacle, receiver_mask=normal)
    b = radius_pairs_reference(pos, 0.2, sender_mask=normal, receiver_mask=obstacle)
    keys = torch.cat([a[1] * 300 + a[0], b[1] * 300 + b[0]]).sort().values
    assert torch.equal(got, torch.stack([keys % 300, keys // 300]))
    assert bool((obstacle[got[0]] != obstacle[got[1]]).all())


def test_float32_float64_and_grad_positions():
    pos = torch.rand(120, 3, dtype=torch.float64, requires_grad=True)
    assert torch.equal(radius_pairs(pos, 0.3), radius_pairs_reference(pos, 0.3))
    far = torch.rand(120, 2) * 1e4 + 1e6  # far from the origin: cells relative to the bounding box
    assert_same(far, 500.0)
    huge = torch.tensor([[0.0, 0.0], [1e-9, 0.0], [1e12, 0.0]], dtype=torch.float64)  # radius << extent
    assert radius_pairs(huge, 1e-6).tolist() == [[1, 0], [0, 1]]


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(0, 60),
    dim=st.sampled_from([2, 3]),
    radius=st.floats(0.0, 2.0),
    seed=st.integers(0, 2**16),
    graphs=st.integers(1, 3),
)
def test_property_random_clouds(n, dim, radius, seed, graphs):
    gen = torch.Generator().manual_seed(seed)
    pos = torch.round(torch.rand(n, dim, generator=gen) * 8) / 8  # many coincident and exactly-at-radius pairs
    batch = torch.randint(0, graphs, (n,), generator=gen)
    send = torch.rand(n, generator=gen) < 0.7
    assert_same(pos, radius, batch=batch)
    assert_same(pos, radius, sender_mask=send, batch=batch)


def test_invalid_inputs_raise_clear_errors():
    pos = torch.rand(10, 3)
    for bad, kind in [
        (lambda: radius_pairs(torch.rand(10, 4), 0.1), ValueError),
        (lambda: radius_pairs(pos.long(), 0.1), TypeError),
        (lambda: radius_pairs(pos, -1.0), ValueError),
        (lambda: radius_pairs(pos, float("nan")), ValueError),
        (lambda: radius_pairs(torch.full((3, 2), float("nan")), 0.1), ValueError),
        (lambda: radius_pairs(pos, 0.1, sender_mask=torch.ones(9, dtype=torch.bool)), ValueError),
        (lambda: radius_pairs(pos, 0.1, batch=torch.zeros(10)), ValueError),
        (lambda: radius_pairs(pos, 0.1, exclude_edges=torch.tensor([[0], [10]])), ValueError),
    ]:
        with pytest.raises(kind):
            bad()


def test_every_ordered_pair_of_a_small_grid_once():
    pts = torch.tensor(list(itertools.product(range(3), range(3))), dtype=torch.float32)
    got = radius_pairs(pts, 1.5)  # 4-neighbours (1.0) and diagonals (1.414)
    assert got.shape[1] == 2 * (12 + 8)


@pytest.mark.parametrize("dim", [2, 3])
def test_parallel_ranges_match_ckdtree_and_one_thread(dim, monkeypatch):
    # 12,000 points: the CPU search splits the sorted points over two threads; cKDTree is an independent oracle.
    from meshsim.kernels import _warp
    from scipy.spatial import cKDTree

    monkeypatch.setattr(_warp.os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # split even on a busy machine

    pos = torch.rand(12_000, dim, generator=torch.Generator().manual_seed(dim), dtype=torch.float64)
    radius = 0.012 if dim == 2 else 0.05
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert _warp.cpu_workers(torch.device("cpu"), 12_000, 4096, load_aware=True) == 2
        two = radius_pairs(pos, radius)
        obstacle = pos[:, 0] < 0.3
        two_contact = contact_pairs(pos, radius, obstacle, ~obstacle)
        torch.set_num_threads(1)
        one = radius_pairs(pos, radius)
        one_contact = contact_pairs(pos, radius, obstacle, ~obstacle)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two) and torch.equal(one_contact, two_contact)
    pairs = torch.from_numpy(cKDTree(pos.numpy()).query_pairs(radius, output_type="ndarray"))
    keys = torch.cat([pairs[:, 1] * 12_000 + pairs[:, 0], pairs[:, 0] * 12_000 + pairs[:, 1]]).sort().values
    assert torch.equal(two[1] * 12_000 + two[0], keys)


def test_run_parallel_waits_for_every_task_even_when_one_fails():
    """The caller sees a task's exception only once no task is still running (none is left writing buffers)."""
    import threading
    import time

    from meshsim.kernels import _warp

    finished = threading.Event()

    def slow():
        time.sleep(0.2)
        finished.set()

    def fail():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _warp.run_parallel([fail, slow])
    assert finished.is_set()
    with pytest.raises(RuntimeError, match="boom"):  # a worker's exception reaches the caller too
        _warp.run_parallel([lambda: None, fail])
    assert _warp.split_range(10, 3) == [(0, 3), (3, 3), (6, 4)] and _warp.split_range(2, 4) == [(0, 1), (1, 1)]
