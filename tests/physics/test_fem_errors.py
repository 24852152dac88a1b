"""Blow-ups and bad inputs stop with one-line MeshsimErrors that name the element, node or step."""

import numpy as np
import pytest

from meshsim.errors import ConfigError, MeshError, SimulationError
from meshsim.mesh import rectangle
from meshsim.physics.fem import FemSolver
from meshsim.physics.fem_model import FemModel
from meshsim.physics.obstacles import RigidBody

TRI = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])


def test_inverted_element_names_element_and_step():
    mesh = rectangle((1.0, 1.0), (2, 2))
    v = np.zeros_like(mesh.points)
    v[4] = (-1e4, -1e4)  # the centre node is thrown through its neighbours
    model = FemModel.build(mesh.points, mesh.cells, youngs_modulus=1e3, material="linear", velocity=v)
    solver = FemSolver(model)
    with pytest.raises(SimulationError, match=r"element \d+ inverted .* by step \d+"):
        solver.simulate(3, 1e-3)


def test_nan_names_node_and_step():
    v = np.array([[np.nan, 0.0], [0.0, 0.0], [0.0, 0.0]])
    model = FemModel.build(TRI, [[0, 1, 2]], velocity=v)
    solver = FemSolver(model)
    with pytest.raises(SimulationError, match=r"node 0 has a non-finite position by step \d+"):
        solver.simulate(2, 1e-3)


def test_substep_beyond_cfl_limit_is_refused():
    model = FemModel.build(TRI, [[0, 1, 2]], youngs_modulus=1e9, density=1000.0)
    solver = FemSolver(model)
    with pytest.raises(SimulationError, match=r"CFL limit .* element 0"):
        solver.simulate(2, 1e-3, dt=1e-3)


def test_contact_stiffness_limits_the_automatic_step():
    soft = FemModel.build(TRI, [[0, 1, 2]], youngs_modulus=1e3)
    stiff_contact = FemModel.build(TRI, [[0, 1, 2]], youngs_modulus=1e3,
                                   obstacles=[RigidBody("plane", (0.0, -1.0), normal=(0.0, 1.0), stiffness=1e12)])
    assert stiff_contact.stable_dt < 1e-3 * soft.stable_dt
    assert "obstacle 0" in stiff_contact.stable[1]


@pytest.mark.parametrize("kwargs,error,match", [
    ({"cells": [[0, 2, 1]]}, MeshError, "element 0 is inverted"),
    ({"cells": [[0, 1, 5]]}, MeshError, "index"),
    ({"material": "rubber"}, ConfigError, "unknown material"),
    ({"poisson_ratio": 0.5}, ConfigError, "poisson_ratio"),
    ({"youngs_modulus": -1.0}, ConfigError, "youngs_modulus"),
    ({"fixed": np.zeros(5, bool)}, ConfigError, "fixed"),
    ({"obstacles": [RigidBody("sphere", (0.0, 0.0))]}, ConfigError, "radius"),
    ({"obstacles": [RigidBody("plane", (0.0, 0.0), normal=(0.0, 1.0), mass=1.0)]}, ConfigError, "kinematic"),
])
def test_bad_inputs_raise_one_line_errors(kwargs, error, match):
    args = {"cells": [[0, 1, 2]], **kwargs}
    with pytest.raises(error, match=match) as info:
        FemModel.build(TRI, **args)
    assert "\n" not in str(info.value)


def test_element_compressed_below_its_cfl_limit_is_reported():
    model = FemModel.build(TRI, [[0, 1, 2]], youngs_modulus=1e3, cfl=0.9)
    solver = FemSolver(model)
    squashed = TRI * np.array([1.0, 0.5])  # J = 0.5: critical step shrinks by sqrt(0.5) < 0.9
    diag = solver.diagnostics(model.state(positions=squashed))
    solver.check(diag, step=7)  # without a substep only NaN / inversion are checked
    with pytest.raises(SimulationError, match=r"CFL limit violated at element 0 by step 7"):
        solver.check(diag, step=7, dt=model.stable_dt)
