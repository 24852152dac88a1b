"""FEM in model / state / control / step form: the model is read-only, a control carrying the model's own Lame
parameters steps exactly like the default one, and the solver takes nothing but a model."""

import dataclasses

import numpy as np
import pytest
import warp as wp

from meshsim.errors import ConfigError
from meshsim.mesh import rectangle
from meshsim.physics.fem import FemSolver
from meshsim.physics.fem_model import FemModel
from meshsim.physics.fem_state import FemControl
from meshsim.physics.obstacles import RigidBody


def _model(device="cpu", **kw):
    mesh = rectangle((1.0, 0.2), (6, 2))
    ball = RigidBody("sphere", (0.7, 0.35), radius=0.2, velocity=(0.0, -0.3), stiffness=6e3, friction=0.3,
                     damping=0.1, mass=0.5)
    return FemModel.build(mesh.points, mesh.cells, density=1000.0, youngs_modulus=1e4, poisson_ratio=0.3,
                          fixed=np.isclose(mesh.points[:, 0], 0.0), obstacles=[ball], gravity=(0.0, -9.81),
                          stiffness_damping=1e-3, device=device, **kw)


def test_model_is_read_only():
    model = _model()
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.gravity = np.zeros(2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.mu = None
    with pytest.raises(ValueError, match="read-only"):
        model.mass_np[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        model.points[0, 0] = 1.0
    assert isinstance(model.obstacles, tuple)


def _run(solver, control, steps=20):
    model = solver.model
    a, b = model.state(), model.state()
    for _ in range(steps):
        solver.step(a, b, control, model.forces(), model.stable_dt)
        a, b = b, a
    return a


def test_control_with_the_models_own_lame_parameters_equals_the_default_step(device):
    model = _model(device)
    default = _run(FemSolver(model), model.control())
    own = FemControl(mu=wp.clone(model.mu), lam=wp.clone(model.lam))  # the same values in other arrays
    driven = _run(FemSolver(model), own)
    for name in ("x", "v", "contact", "body_pos", "body_rot", "body_vel", "body_omega"):
        assert np.array_equal(getattr(default, name).numpy(), getattr(driven, name).numpy()), name
    double = lambda a: wp.array(2 * a, dtype=model.scalar, device=model.device)  # noqa: E731
    stiffer = FemControl(mu=double(model.mu_np), lam=double(model.lam_np))
    assert not np.array_equal(_run(FemSolver(model), stiffer).x.numpy(), default.x.numpy())


def test_a_recorded_run_equals_single_steps():
    model = _model(dtype="float64")
    solver = FemSolver(model)
    res = solver.simulate(2, 20 * model.stable_dt)
    assert res.substeps == 20
    stepped = _run(FemSolver(model), model.control(), steps=20)
    assert np.array_equal(res.positions[-1], stepped.x.numpy())


def test_forces_zero_clears_every_accumulator():
    model = _model()
    forces = model.forces()
    for arr in (forces.f, forces.body_force, forces.body_torque, forces.between_bodies):
        arr.fill_(1.0)
    forces.zero()
    assert all(not arr.numpy().any() for arr in (forces.f, forces.body_force, forces.body_torque,
                                                  forces.between_bodies))


def test_solver_takes_a_model():
    mesh = rectangle((1.0, 0.2), (2, 1))
    with pytest.raises(ConfigError, match="FemModel") as info:
        FemSolver(mesh.points)
    assert "\n" not in str(info.value)
