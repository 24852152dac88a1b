"""Rigid obstacles: resting contact, friction, shapes' normals, equal and opposite forces on free bodies."""

import math

import numpy as np
import pytest

from meshsim.mesh import box, disk, rectangle
from meshsim.physics.fem import FemSolver
from meshsim.physics.fem_model import FemModel
from meshsim.physics.obstacles import RigidBody


def test_block_resting_on_plane_neither_sinks_nor_gains_energy():
    mesh = rectangle((0.2, 0.1), (8, 4))
    k = 8.0e6  # Pa/m: 2e5 N/m on each bottom node's 25 mm of boundary
    plane = RigidBody("plane", (0.0, 0.0), normal=(0.0, 1.0), stiffness=k, damping=0.0)
    model = FemModel.build(mesh.points, mesh.cells, density=1000.0, youngs_modulus=1e6, poisson_ratio=0.3,
                           gravity=(0.0, -9.81), obstacles=[plane], mass_damping=20.0)
    solver = FemSolver(model)
    res = solver.simulate(81, 0.01)
    weight = model.mass_np.sum() * 9.81
    bottom = np.isclose(mesh.points[:, 1], 0.0)
    tolerance = weight / (k * 0.2)  # penalty penetration if the 0.2 m bottom face carries the weight
    assert res.positions[:, :, 1].min() > -2.0 * tolerance
    # Settled: the plane carries the weight, with the penetration of the penalty springs.
    assert res.contact_force[-1, :, 1].sum() == pytest.approx(weight, rel=0.01)
    assert -res.positions[-1, bottom, 1].mean() == pytest.approx(tolerance, rel=0.3)
    total = res.energies["total_energy"]
    assert total.max() <= total[0] * (1 + 1e-6)  # never above the energy it started with
    assert total[-1] < total[0]
    assert np.abs(res.velocities[-1]).max() < 1e-3


def test_elastic_contact_without_damping_keeps_energy():
    """A block dropped on an undamped penalty plane bounces without gaining energy."""
    mesh = rectangle((0.2, 0.1), (8, 4))
    p = mesh.points + np.array([0.0, 0.01])
    plane = RigidBody("plane", (0.0, 0.0), normal=(0.0, 1.0), stiffness=4e7, damping=0.0)
    model = FemModel.build(p, mesh.cells, density=1000.0, youngs_modulus=1e6, poisson_ratio=0.3, gravity=(0.0, -9.81),
                           obstacles=[plane], dtype="float64")
    solver = FemSolver(model)
    res = solver.simulate(61, 2e-3)
    total = res.energies["total_energy"]
    assert res.contact_force[:, :, 1].max() > 0  # it did touch
    assert np.abs(total - total[0]).max() < 0.01 * abs(total[0])


def test_friction_stops_a_sliding_block():
    mesh = rectangle((0.2, 0.05), (8, 2))
    mu = 0.5
    plane = RigidBody("plane", (0.0, 0.0), normal=(0.0, 1.0), stiffness=4e7, damping=0.5, friction=mu)
    v0 = 1.0
    model = FemModel.build(mesh.points, mesh.cells, density=1000.0, youngs_modulus=1e6, poisson_ratio=0.3,
                           gravity=(0.0, -9.81), obstacles=[plane], velocity=(v0, 0.0), stiffness_damping=1e-4)
    solver = FemSolver(model)
    res = solver.simulate(41, 0.01)
    vx = (model.mass_np * res.velocities[:, :, 0]).sum(1) / model.mass_np.sum()
    # Coulomb: constant deceleration mu g until it stops at t = v0 / (mu g) ~ 0.2 s.
    t = np.arange(41) * 0.01
    moving = t < 0.15
    expected = v0 - mu * 9.81 * t
    assert np.allclose(vx[moving][3:], expected[moving][3:], atol=0.05)
    assert abs(vx[-1]) < 0.02


@pytest.mark.parametrize("shape,kwargs,normal", [
    ("sphere", {"radius": 0.1}, (1.0, 0.0, 0.0)),
    ("box", {"half_extents": (0.1, 0.2, 0.3)}, (1.0, 0.0, 0.0)),
    ("capsule", {"radius": 0.05, "half_length": 0.3}, (0.0, 0.0, 1.0)),
])
def test_obstacle_pushes_nodes_out_along_its_normal(shape, kwargs, normal):
    """A small tet just inside each shape's surface is pushed out along the known outward normal."""
    n = np.asarray(normal)
    surface = {"sphere": 0.1 * n, "box": 0.1 * n, "capsule": 0.05 * n + np.array([0.2, 0.0, 0.0])}[shape]
    tet = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float) * 1e-3
    pts = surface - 0.002 * n + tet
    body = RigidBody(shape, (0.0, 0.0, 0.0), stiffness=1e8, damping=0.0, **kwargs)
    model = FemModel.build(pts, [[0, 1, 2, 3]], obstacles=[body])
    solver = FemSolver(model)
    s0, s1 = model.state(), model.state()
    solver.step(s0, s1, model.control(), model.forces(), 1e-6)
    f = s1.contact.numpy()
    assert np.all(f @ n > 0)  # every node inside is pushed outwards
    # Node 0 sits on the axis through the surface point: its force is exactly along n, with magnitude
    # k * (its share of the boundary area) * depth.
    area = model.contact_area_np[0]
    assert area == pytest.approx(0.5e-6, rel=1e-6)  # a third of each of its three right-triangle faces
    assert np.allclose(f[0], 1e8 * area * 0.002 * n, rtol=1e-4, atol=1e-12)


def test_free_ball_bounces_with_equal_and_opposite_forces():
    """A free disk hits a free plate: total momentum of plate + ball is conserved through the impact."""
    plate = rectangle((0.3, 0.02), (15, 2))
    ball_mesh = disk(0.03, 3)
    ball = RigidBody("sphere", (0.15, 0.06), radius=0.03, velocity=(0.5, -2.0), angular_velocity=3.0, mass=0.5,
                     stiffness=2.5e7, damping=0.0, friction=0.3, mesh_points=ball_mesh.points)
    model = FemModel.build(plate.points, plate.cells, density=1000.0, youngs_modulus=1e6, poisson_ratio=0.3,
                           obstacles=[ball])
    solver = FemSolver(model)
    res = solver.simulate(41, 1e-3)
    m = model.mass_np[:, None]
    momentum = (m * res.velocities).sum(1) + 0.5 * res.body_velocity[:, 0]
    assert res.contact_force[:, :, 1].min() < 0  # the plate was pushed down
    assert res.body_velocity[-1, 0, 1] > 0.2  # the ball bounced back up
    assert np.allclose(momentum, momentum[0], atol=1e-4 * np.abs(momentum[0]).max())
    # The ball's mesh moves rigidly.
    pts = res.body_points[0]
    d0 = np.linalg.norm(pts[0, 1:] - pts[0, :1], axis=1)
    d1 = np.linalg.norm(pts[-1, 1:] - pts[-1, :1], axis=1)
    assert np.allclose(d0, d1, atol=1e-6)


def test_kinematic_box_moves_with_its_prescribed_velocity_in_3d():
    slab = box((0.2, 0.2, 0.02), (4, 4, 1))
    fixed = np.isclose(slab.points[:, 0], 0.0) | np.isclose(slab.points[:, 0], 0.2)
    pusher = RigidBody("box", (0.1, 0.1, 0.035), half_extents=(0.02, 0.02, 0.015), velocity=(0.0, 0.0, -0.5),
                       stiffness=4e6, quaternion=(0.0, 0.0, math.sin(0.2), math.cos(0.2)))
    model = FemModel.build(slab.points, slab.cells, density=1000.0, youngs_modulus=1e5, poisson_ratio=0.3,
                           fixed=fixed, obstacles=[pusher], mass_damping=10.0)
    solver = FemSolver(model)
    res = solver.simulate(11, 4e-3)
    assert res.body_position[-1, 0, 2] == pytest.approx(0.035 - 0.5 * 0.04, abs=1e-6)
    assert res.positions[-1, :, 2].min() < -0.002  # the slab was pushed down


def test_two_deformable_bodies_collide_and_bounce_apart():
    a = rectangle((0.1, 0.1), (5, 5))
    h = 0.02  # contact radius = node spacing
    pts = np.concatenate([a.points, a.points + [0.1 + 1.5 * h, 0.0]])
    cells = np.concatenate([a.cells, a.cells + len(a.points)])
    n = len(a.points)
    v = np.zeros_like(pts)
    v[:n, 0], v[n:, 0] = 1.0, -1.0
    model = FemModel.build(pts, cells, density=1000.0, youngs_modulus=1e5, poisson_ratio=0.3, velocity=v,
                           body_contact=dict(radius=h, stiffness=2e4, damping=0.0))
    solver = FemSolver(model)
    res = solver.simulate(41, 2e-3)
    momentum = (model.mass_np[:, None] * res.velocities).sum(1)
    assert np.abs(momentum).max() < 1e-5  # equal and opposite node-node forces
    vx_a = res.velocities[:, :n, 0].mean(1)
    assert vx_a[-1] < -0.5  # bounced back
    gaps = [np.linalg.norm(x[:n, None] - x[None, n:], axis=-1).min() for x in res.positions]
    assert min(gaps) > 0.3 * h  # never interpenetrate
    total = res.energies["total_energy"]  # includes the node-node penalty potential
    assert np.abs(total - total[0]).max() < 0.05 * total[0]
    assert res.contact_force[:, :n, 0].min() < 0  # reported in the contact field


def test_energy_balance_with_a_kinematic_pusher_and_prescribed_motion():
    """Undamped: the change of total energy equals the work of the kinematic body and the moving clamp."""
    mesh = rectangle((0.3, 0.05), (12, 2))
    p = mesh.points
    left = np.isclose(p[:, 0], 0.0)
    right = np.isclose(p[:, 0], 0.3)
    pv = np.zeros_like(p)
    pv[right, 0] = 0.05  # the right end is pulled at a prescribed speed
    pusher = RigidBody("sphere", (0.15, 0.08), radius=0.03, velocity=(0.0, -0.5), stiffness=4e6, damping=0.0)
    model = FemModel.build(p, mesh.cells, density=1000.0, youngs_modulus=1e6, poisson_ratio=0.3, fixed=left | right,
                           prescribed_velocity=pv, obstacles=[pusher], dtype="float64")
    solver = FemSolver(model)
    res = solver.simulate(41, 1e-3)
    e = res.energies
    assert e["external_work"][-1] > 0.5 * e["strain_energy"][-1] > 0
    balance = e["total_energy"] - e["total_energy"][0] - e["external_work"]
    assert np.abs(balance).max() < 0.02 * np.abs(e["external_work"]).max()


@pytest.mark.parametrize("dim", [2, 3])
def test_contact_force_does_not_change_when_the_mesh_is_refined(dim):
    """A rigid disk (sphere) pressed a fixed depth into a held block: the penalty pressure acts on each node's share
    of the boundary, so the total force converges to the integral of the pressure over the top face as the mesh is
    refined, instead of growing with the number of nodes under the body (x4 per refinement in 3D before)."""
    k, radius, depth, top = 1e9, 0.1, 0.01, 0.05
    centre = np.array([0.1, top + radius - depth] if dim == 2 else [0.1, 0.1, top + radius - depth])
    forces = []
    for n in (10, 20, 40):
        mesh = rectangle((0.2, top), (n, 2)) if dim == 2 else box((0.2, 0.2, top), (n, n, 1))
        ball = RigidBody("sphere", tuple(centre), radius=radius, stiffness=k, damping=0.0)
        model = FemModel.build(mesh.points, mesh.cells, obstacles=[ball], fixed=np.ones(len(mesh.points), bool))
        solver = FemSolver(model)
        s0, s1 = model.state(), model.state()
        solver.step(s0, s1, model.control(), model.forces(), 1e-9)
        forces.append(-float(s1.contact.numpy()[:, dim - 1].sum()))
    # The continuum answer: the vertical part of k * (penetration along the normal), integrated over the top face
    # by the midpoint rule on a fine grid.
    m = 4000 if dim == 2 else 1000
    u = (np.arange(m) + 0.5) / m * 0.2
    face = u[:, None] if dim == 2 else np.stack(np.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2)
    p = np.concatenate([face, np.full((len(face), 1), top)], axis=1)
    r = np.linalg.norm(p - centre, axis=1)
    exact = k * np.sum(np.maximum(radius - r, 0) * (centre[-1] - top) / r) * (0.2 / m) ** (dim - 1)
    assert forces[2] == pytest.approx(exact, rel=0.01)  # measured: 2D +0.06 %, 3D +0.1 %
    assert forces[1] == pytest.approx(exact, rel=0.01)  # 2D +0.5 %, 3D -0.02 %
    assert forces[0] == pytest.approx(exact, rel=0.06)  # 2D -0.5 %, 3D -4.4 % (10 x 10 nodes on the face)
