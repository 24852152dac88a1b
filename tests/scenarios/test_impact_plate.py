"""impact-plate-2d: node types, attrs, a ball that hits, deforms the plate and bounces back rigidly."""

import numpy as np
import pytest

from meshsim.datasets import NodeType, check_trajectory
from meshsim.errors import ConfigError
from meshsim.scenarios import get_scenario


@pytest.fixture(scope="module")
def trajectory():
    scenario = get_scenario("impact-plate-2d")
    return scenario.simulate(scenario.make_config(), seed=3)


def test_small_default_size_and_schema(trajectory):
    traj = check_trajectory(trajectory, "impact-plate-2d")
    assert 250 <= traj.num_nodes <= 350 and traj.num_frames == 20
    assert traj.cells.shape[1] == 3 and traj.world_pos.shape == (20, traj.num_nodes, 2)
    assert set(np.unique(traj.node_type)) == {NodeType.NORMAL, NodeType.OBSTACLE, NodeType.HANDLE,
                                              NodeType.SYMMETRIC}
    for key in ("density", "youngs_modulus", "poisson_ratio", "ball_radius", "ball_speed", "impact_angle"):
        assert isinstance(traj.attrs[key], float)
    assert traj.fields["stress"].shape == (20, traj.num_nodes)
    assert set(traj.globals) >= {"kinetic_energy", "strain_energy", "total_energy"}


def test_boundary_conditions_hold(trajectory):
    t = trajectory
    sym = t.node_type == NodeType.SYMMETRIC
    handle = t.node_type == NodeType.HANDLE
    assert np.allclose(t.world_pos[:, sym, 0], 0.0)
    assert np.allclose(t.world_pos[:, handle], t.mesh_pos[handle])
    assert np.abs(t.world_pos[:, sym, 1] - t.mesh_pos[sym, 1]).max() > 0  # free along the symmetry line


def test_ball_hits_deforms_plate_and_bounces_back_rigidly(trajectory):
    t = trajectory
    plate = (t.node_type != NodeType.OBSTACLE)
    ball = ~plate
    deflection = (t.world_pos[:, plate, 1] - t.mesh_pos[plate, 1]).min()
    assert deflection < -0.2 * t.attrs["plate_thickness"]  # visibly deformed
    assert t.fields["stress"][:, plate].max() > 1e6  # MPa-range stresses
    assert np.all(t.fields["stress"][:, ball] == 0)
    centre = t.world_pos[:, ball].mean(1)
    velocity = np.diff(centre, axis=0) / t.dt
    assert velocity[0, 1] < 0 and velocity[-1, 1] > 0  # came down, went back up
    # Rigid: distances between ball nodes never change.
    first = t.world_pos[0, ball]
    last = t.world_pos[-1, ball]
    d0 = np.linalg.norm(first[:, None] - first[None], axis=-1)
    d1 = np.linalg.norm(last[:, None] - last[None], axis=-1)
    assert np.abs(d0 - d1).max() < 1e-6
    # The ball never sinks deeper into the plate than a small fraction of its radius.
    assert t.globals["contact_energy"].max() < 0.1 * t.globals["total_energy"][0]


def test_parameters_are_sampled_per_seed_and_reproducible():
    scenario = get_scenario("impact-plate-2d")
    cfg = scenario.make_config(["num_frames=3", "cells_x=10", "cells_y=2", "ball_rings=2"])
    a, b, c = (scenario.simulate(cfg, seed) for seed in (1, 1, 2))
    assert np.array_equal(a.world_pos, b.world_pos) and a.attrs == b.attrs
    assert a.attrs["youngs_modulus"] != c.attrs["youngs_modulus"]
    lo, hi = cfg.youngs_modulus
    assert lo <= c.attrs["youngs_modulus"] <= hi


def test_benchmark_preset_has_published_size():
    cfg = get_scenario("impact-plate-2d").make_config(["preset=benchmark"])
    nodes = (cfg.cells_x + 1) * (cfg.cells_y + 1) + 1 + 3 * cfg.ball_rings * (cfg.ball_rings + 1)
    assert 1800 <= nodes <= 2400 and cfg.num_frames == 50


@pytest.mark.parametrize("override,match", [
    ("ball_speed=[5, 1]", "lo > hi"),
    ("poisson_ratio=[0.3, 0.5]", "poisson_ratio"),
    ("preset=huge", "unknown preset"),
    ("cells_y=0", "cells_y"),
    ("nonsense=1", "unknown key"),
])
def test_bad_overrides_are_config_errors(override, match):
    with pytest.raises(ConfigError, match=match):
        get_scenario("impact-plate-2d").make_config([override])
