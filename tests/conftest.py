"""Shared test set-up, and fixtures used in more than one folder (small trajectories, random rotations).

Fixtures used by one folder only live in its own conftest.py (tests/<package>/conftest.py)."""

import os
import shutil
import signal

import numpy as np
import procs
import pytest

# Keep Warp quiet and its kernel cache shared between runs (compiles are slow on CPU).
os.environ.setdefault("WARP_CACHE_PATH", os.path.expanduser("~/.cache/warp"))


def pytest_configure(config):
    # A SIGTERM to pytest (a CI job cancelled, `kill`) unwinds like Ctrl-C, so every test's `finally` runs and
    # the processes it started (tests/procs.py) are stopped with their process groups.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)


_PYTEST_PID = os.getpid()


def _terminated(signum, frame):
    if os.getpid() != _PYTEST_PID:  # a forked child inherited the handler: die as SIGTERM would have it
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    raise KeyboardInterrupt("SIGTERM")


def pytest_sessionfinish(session, exitstatus):
    procs.stop_all()  # a safety net: each test already stops what it started


def pytest_collection_modifyitems(config, items):
    if shutil.which("chromium") or os.path.exists("/usr/bin/chromium"):
        return
    skip = pytest.mark.skip(reason="Debian chromium not installed (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


def _cuda_reason() -> str | None:
    """Why CUDA tests cannot run here (None when they can): torch and Warp must both see a GPU."""
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    import warp as wp

    wp.config.quiet = True
    if not wp.is_cuda_available():
        return "torch sees CUDA but Warp does not (driver / toolkit mismatch)"
    return None


def devices() -> list:
    """"cpu" and "cuda" as pytest params; cuda is skipped, with the reason, where it is missing (as Warp's tests do)."""
    reason = _cuda_reason()
    return ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(reason is not None, reason=reason or ""))]


def pytest_generate_tests(metafunc):
    """Every test that takes a `device` argument runs on each device, unless it parametrizes `device` itself."""
    if "device" in metafunc.fixturenames and not any(
        "device" in m.args[0] for m in metafunc.definition.iter_markers("parametrize")
    ):
        metafunc.parametrize("device", devices())


# Small trajectories (tests/datasets, tests/commands). meshsim and torch are imported where used, so that
# collecting a folder that needs neither stays fast.
def make_trajectory(seed=0, frames=6, nodes=12, dim=2, k=3, rollout=False):
    from meshsim.datasets import Trajectory

    rng = np.random.default_rng(seed)
    world = rng.normal(size=(frames, nodes, dim)).astype(np.float32)
    traj = Trajectory(
        cells=rng.integers(0, nodes, size=(2 * nodes, k)).astype(np.int32),
        mesh_pos=rng.normal(size=(nodes, dim)).astype(np.float32),
        node_type=rng.choice([0, 1, 3], size=nodes).astype(np.int32),
        world_pos=world,
        dt=0.005 * (seed + 1),
        fields={"stress": rng.random((frames, nodes)).astype(np.float32),
                "velocity": rng.normal(size=(frames, nodes, dim)).astype(np.float32)},
        globals={"kinetic_energy": rng.random(frames)},
        attrs={"youngs_modulus": 2.0e5 + seed, "material": "neo-hookean", "seed": seed, "clamped": True,
               "ball_velocity": np.array([0.0, -3.5])},
    )  # fmt: skip
    if rollout:
        traj.pred_world_pos = world + 0.01
        traj.pred_fields = {"stress": traj.fields["stress"] * 2}
    return traj


def assert_same(a, b):
    for name in ("cells", "mesh_pos", "node_type", "world_pos"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.dt == pytest.approx(b.dt, rel=0, abs=0)
    assert a.fields.keys() == b.fields.keys() and a.globals.keys() == b.globals.keys()
    for k in a.fields:
        np.testing.assert_array_equal(a.fields[k], b.fields[k])
    for k in a.globals:
        np.testing.assert_array_equal(a.globals[k], b.globals[k])
    assert a.attrs.keys() == b.attrs.keys()
    for k, v in a.attrs.items():
        np.testing.assert_array_equal(v, b.attrs[k])


@pytest.fixture
def make_traj():
    return make_trajectory


@pytest.fixture
def same():
    return assert_same


# Random rotations (tests/physics, tests/models).
@pytest.fixture
def rotations():
    """rotations(n, seed) -> [n, 3, 3] float64 random proper rotations."""
    return random_rotations


def random_rotations(n, dtype=None, seed=0):
    import torch

    dtype = torch.float64 if dtype is None else dtype
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(n, 3, 3, generator=g, dtype=dtype))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    return q * torch.det(q)[:, None, None]
