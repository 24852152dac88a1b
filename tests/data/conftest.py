"""Small trajectories for the data tests."""

import numpy as np
import pytest

from meshsim.datasets import Trajectory


def make_trajectory(seed=0, frames=6, nodes=12, dim=2, k=3, rollout=False):
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
