"""hypothesis fuzzing of the mesh and graph builders on random meshes, against oracles that do not share their code
(Euler characteristic, scipy's convex hull, graph connectivity, translation equivariance, brute-force pairs), and
byte-flip fuzzing of the HDF5 reader on damaged copies of a valid store (in a child process: a crash in the HDF5
C library must fail the test, not kill the run). The data and mesh areas already fuzz random cells, random bytes
and random shapes; these are the cases they do not reach."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from procs import spawn
from scipy.spatial import ConvexHull, Delaunay

from meshsim.mesh import boundary_facets, edges_from_cells
from meshsim.mesh.hierarchy import build_hierarchy

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def point_clouds(draw, min_points=5, max_points=40):
    dim = draw(st.sampled_from([2, 3]))
    n = draw(st.integers(min_points + dim - 2, max_points))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    offset = draw(st.sampled_from([0.0, 5.0, -1e4]))
    rng = np.random.default_rng(seed)
    return rng.random((n, dim)) * scale + offset


def _delaunay(points):
    tri = Delaunay(points)  # Qhull: random points are in general position with probability one
    used = np.unique(tri.simplices)
    return tri, used


def _components(edges, n):
    graph = sp.coo_matrix((np.ones(edges.shape[1]), (edges[0], edges[1])), shape=(n, n))
    return sp.csgraph.connected_components(graph, directed=False)[1]


@SETTINGS
@given(points=point_clouds())
def test_delaunay_meshes_satisfy_euler_and_their_boundary_is_the_convex_hull(points, tally):
    tri, used = _delaunay(points)
    cells, dim = tri.simplices.astype(np.int64), points.shape[1]
    edges = np.asarray(edges_from_cells(cells, len(points)))
    assert edges.shape[0] == 2 and (edges[0] != edges[1]).all()
    pairs = {tuple(e) for e in edges.T}
    assert all((b, a) in pairs for a, b in pairs)  # two-way
    num_edges = len(pairs) // 2
    # A triangulated disk / ball has Euler characteristic 1: V - E + F (- T) = 1.
    if dim == 2:
        assert len(used) - num_edges + len(cells) == 1
    else:
        faces = {tuple(sorted(f)) for c in cells for f in
                 (c[[0, 1, 2]], c[[0, 1, 3]], c[[0, 2, 3]], c[[1, 2, 3]])}
        assert len(used) - num_edges + len(faces) - len(cells) == 1
    hull = {tuple(sorted(f)) for f in ConvexHull(points).simplices}
    boundary = {tuple(sorted(f)) for f in np.asarray(boundary_facets(cells))}
    assert boundary == hull
    tally["fuzz.delaunay_meshes"] += 1


@SETTINGS
@given(points=point_clouds(min_points=8, max_points=60), keep=st.floats(0.3, 1.0), seed=st.integers(0, 1000))
def test_hierarchy_on_random_meshes_with_holes_keeps_components_and_shrinks(points, keep, seed, tally):
    tri, _ = _delaunay(points)
    rng = np.random.default_rng(seed)
    cells = tri.simplices[rng.random(len(tri.simplices)) < keep]  # holes, several bodies, unreferenced nodes
    if len(cells) == 0:
        cells = tri.simplices[:1]
    n = len(points)
    edges = np.asarray(edges_from_cells(cells.astype(np.int64), n))
    hierarchy = build_hierarchy(points, edges, levels=4, min_nodes=3)
    labels0 = _components(edges, n)
    ids_to_fine = np.arange(n)
    previous = n
    for level in hierarchy.levels[1:]:
        assert level.num_nodes < previous and len(np.unique(level.ids)) == level.num_nodes
        assert level.ids.min() >= 0 and level.ids.max() < previous
        ids_to_fine = ids_to_fine[level.ids]
        e = level.edges
        if e.size:
            assert e.min() >= 0 and e.max() < level.num_nodes and (e[0] != e[1]).all()
            pairs = {tuple(x) for x in e.T}
            assert all((b, a) in pairs for a, b in pairs)
        # connected at this level exactly when connected in the mesh: bodies never merge and never split
        labels = _components(e if e.size else np.zeros((2, 0), int), level.num_nodes)
        fine = labels0[ids_to_fine]
        assert len(np.unique(labels)) == len(np.unique(fine))
        for lab in np.unique(labels):
            assert len(np.unique(fine[labels == lab])) == 1
        previous = level.num_nodes
    tally["fuzz.hierarchies"] += 1


@st.composite
def radius_cases(draw):
    dim = draw(st.sampled_from([2, 3]))
    n = draw(st.integers(0, 80))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    spread = draw(st.sampled_from([1e-4, 1.0, 1e3, 1e5]))
    offset = draw(st.sampled_from([0.0, -3e4, 1e5]))
    pos = rng.random((n, dim)) * spread + offset
    if n > 3 and draw(st.booleans()):
        pos[: n // 3] = pos[0]  # coincident points
    radius = draw(st.sampled_from([0.0, 1e-6, 1e-3, 0.1, 1.0])) * spread
    return pos, radius


@settings(max_examples=60, deadline=None)
@given(case=radius_cases())
def test_radius_pairs_far_from_the_origin_and_clustered_match_brute_force(case, tally):
    from meshsim.kernels import radius_pairs

    pos, radius = case
    t = torch.tensor(pos, dtype=torch.float64)
    got = radius_pairs(t, radius)
    d = (t[:, None] - t[None]).norm(dim=-1)  # exact differences (cdist's matmul form cancels far from 0)
    want = ((d < radius) & ~torch.eye(len(pos), dtype=torch.bool)).nonzero().T if len(pos) else got[:, :0]
    assert {tuple(x) for x in got.T.tolist()} == {tuple(x) for x in want.T.tolist()}
    tally["fuzz.radius_searches"] += 1


@st.composite
def simulator_cases(draw):
    points = draw(point_clouds(min_points=6, max_points=30))
    dim = points.shape[1]
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    node_type = rng.choice([0, 0, 0, 1, 3], size=len(points))
    shift = rng.normal(size=dim) * draw(st.sampled_from([0.0, 0.1, 10.0]))
    return points, node_type, shift, draw(st.sampled_from(["mgn", "hcmt"]))


_SIMS: dict = {}


def _simulator(kind, dim):
    from meshsim.config import from_dict
    from meshsim.models.config import ModelConfig
    from meshsim.models.simulator import LearnedSimulator

    if (kind, dim) not in _SIMS:
        torch.manual_seed(0)
        cfg = from_dict(ModelConfig, {"kind": kind, "latent": 8, "mlp_layers": 1, "blocks": 1, "cmt_blocks": 1,
                                      "levels": 2, "heads": 2, "contact_radius": 0.2, "material_keys": []})
        _SIMS[kind, dim] = LearnedSimulator(cfg, dim).eval()
    return _SIMS[kind, dim]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=simulator_cases())
def test_graph_features_and_models_on_random_meshes_are_finite_and_translation_equivariant(case, tally):
    points, node_type, shift, kind = case
    points = (points - points.min(0)) / max(np.ptp(points, 0).max(), 1e-9)  # unit-sized body
    tri, _ = _delaunay(points)
    sim = _simulator(kind, points.shape[1])
    pos = torch.tensor(points, dtype=torch.float32)
    static = sim.prepare(pos, torch.tensor(tri.simplices), torch.tensor(node_type), {})
    prev, cur = pos, pos + 0.01
    with torch.no_grad():
        nxt, fields = sim.step(static, prev, cur, cur + 0.01)
        s = torch.tensor(shift, dtype=torch.float32)
        moved, moved_fields = sim.step(static, prev + s, cur + s, cur + 0.01 + s)
    assert nxt.shape == pos.shape and torch.isfinite(nxt).all()
    assert all(torch.isfinite(v).all() for v in fields.values())
    torch.testing.assert_close(moved - s, nxt, atol=1e-4 * (1 + float(np.abs(shift).max())), rtol=1e-4)
    for name in fields:
        torch.testing.assert_close(moved_fields[name], fields[name], atol=1e-4, rtol=1e-4)
    tally["fuzz.simulator_graphs"] += 1


FLIPPER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from meshsim.datasets import validate_file
    from meshsim.errors import DataFormatError
    src, work, count, seed, first = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    data = np.frombuffer(open(src, "rb").read(), np.uint8)
    rng = np.random.default_rng(seed)
    for i in range(count):
        mutant = data.copy()
        k = int(rng.integers(1, 33))
        at = rng.integers(0, len(mutant), k)
        mutant[at] = rng.integers(0, 256, k).astype(np.uint8)
        if i < first:
            continue
        open(work, "wb").write(mutant.tobytes())
        print("start", i, flush=True)
        try:
            validate_file(work)  # opens, reads and validates every trajectory
            print("accepted", i, flush=True)
        except DataFormatError:
            print("refused", i, flush=True)
        except Exception as err:
            print("other", i, type(err).__name__, str(err).replace(chr(10), " ")[:200], flush=True)
    print("end", flush=True)
    """
)


def _flip_run(store, work, count, seed, first, per_mutant_s=8.0):
    """Run mutants first..count-1 in a child; returns (outcomes, the mutant it hung or crashed on, how)."""
    import select

    cmd = [sys.executable, "-c", FLIPPER, str(store), str(work), str(count), str(seed), str(first)]
    with spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        outcomes, current = [], None
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], per_mutant_s if current is not None else 120)
            if not ready:
                return outcomes, current, "hang"  # spawn's exit kills it
            line = proc.stdout.readline()
            if not line:
                proc.wait(timeout=60)
                return outcomes, current, f"crash (exit {proc.returncode})"
            word, *rest = line.split()
            if word == "end":
                proc.wait(timeout=60)
                return outcomes, None, None
            if word == "start":
                current = int(rest[0])
            else:
                outcomes.append((word, int(rest[0]), " ".join(rest[1:])))
                current = None


def test_byte_flipped_stores_are_refused_or_read_never_a_python_error(good_inputs, tmp_path, tally):
    """Up to 32 random bytes overwritten anywhere in a valid store: the reader either refuses the file with a
    DataFormatError or reads it fully validated. Damage the HDF5 C library itself cannot survive (a segfault or
    an endless loop inside H5Aread on a corrupted variable-length string) is counted apart, not hidden."""
    count, first, outcomes, native = 150, 0, [], []
    while first < count:
        got, stuck, how = _flip_run(good_inputs["store"], tmp_path / "m.h5", count, 7, first)
        outcomes += got
        if stuck is None:
            break
        native.append((stuck, how))
        first = stuck + 1
    others = [o for o in outcomes if o[0] == "other"]
    assert not others, others[:5]  # only DataFormatError, never another exception
    refused = sum(o[0] == "refused" for o in outcomes)
    accepted = sum(o[0] == "accepted" for o in outcomes)
    assert refused + accepted + len(native) == count
    tally["fuzz.hdf5_byte_flip_mutants"] += count
    tally.note("hdf5_byte_flip", {"mutants": count, "refused": refused, "accepted_and_valid": accepted,
                                  "hdf5_library_crash_or_hang": [f"mutant {i}: {how}" for i, how in native]})
