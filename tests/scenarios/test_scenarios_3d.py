"""drop-test-3d and deforming-plate-3d: schema, boundary conditions and the physics each one is about."""

import numpy as np
import pytest

from meshsim.datasets import NodeType, check_trajectory
from meshsim.errors import ConfigError
from meshsim.scenarios import all_scenarios, get_scenario


def test_all_fem_scenarios_are_registered():
    assert {"impact-plate-2d", "drop-test-3d", "deforming-plate-3d"} <= set(all_scenarios())


@pytest.fixture(scope="module")
def drop():
    s = get_scenario("drop-test-3d")
    return s.simulate(s.make_config(["cells=[8, 4]", "num_frames=6"]), seed=0)


def test_drop_test_hits_the_floor_and_bounces(drop):
    t = check_trajectory(drop, "drop-test-3d")
    panel = t.node_type == NodeType.NORMAL
    floor = t.node_type == NodeType.OBSTACLE
    assert t.cells.shape[1] == 4 and panel.any() and floor.any()
    z = t.world_pos[:, panel, 2]
    assert z[0].min() > 0  # starts above the floor
    assert z.min() > -0.5 * t.attrs["layer_thickness"].min()  # never sinks through it
    assert z[-1].min() > z[1:].min()  # lowest point rising again: the rebound
    assert np.allclose(t.world_pos[:, floor], t.world_pos[0, floor])  # the floor is static
    assert t.fields["stress"][:, panel].max() > 1e6


def test_drop_test_layers_have_different_stiffness(drop):
    assert len(set(drop.attrs["layer_youngs_modulus"])) > 1
    assert drop.attrs["impact_speed"] == pytest.approx(np.sqrt(2 * 9.81 * drop.attrs["drop_height"]))


def test_deforming_plate_is_pushed_and_stays_clamped():
    s = get_scenario("deforming-plate-3d")
    t = check_trajectory(s.simulate(s.make_config(["num_frames=6", "cells=[6, 4]", "layers=1"]), seed=2), "plate")
    assert set(np.unique(t.node_type)) == {NodeType.NORMAL, NodeType.OBSTACLE, NodeType.HANDLE}
    handle = t.node_type == NodeType.HANDLE
    actuator = t.node_type == NodeType.OBSTACLE
    assert np.allclose(t.world_pos[:, handle], t.mesh_pos[handle])
    # The actuator moves rigidly down at its sampled speed; the plate bends under it.
    drop_z = t.world_pos[0, actuator, 2] - t.world_pos[-1, actuator, 2]
    duration = t.dt * (t.num_frames - 1)
    assert np.allclose(drop_z, t.attrs["actuator_speed"] * duration, rtol=1e-4)
    plate = t.node_type == NodeType.NORMAL
    assert (t.world_pos[-1, plate, 2] - t.mesh_pos[plate, 2]).min() < -0.5 * drop_z.mean()
    assert t.fields["stress"][-1, plate].max() > 0


@pytest.mark.parametrize("name,override,match", [
    ("drop-test-3d", "layer_density=[1000.0]", "equal lengths"),
    ("drop-test-3d", "drop_height=[0.0, 1.0]", "drop_height"),
    ("deforming-plate-3d", "poisson_ratio=[0.3, 0.6]", "poisson_ratio"),
    ("deforming-plate-3d", "preset=benchmark", None),
])
def test_configs_validate_and_benchmark_presets_load(name, override, match):
    scenario = get_scenario(name)
    if match is None:
        cfg = scenario.make_config([override])
        assert cfg.preset == "benchmark"
    else:
        with pytest.raises(ConfigError, match=match):
            scenario.make_config([override])
