"""`deforming-plate-3d`: a clamped plate pushed by a kinematic actuator, like MeshGraphNets' DeformingPlate.

A soft hyperelastic plate (tetrahedra) is clamped along its x = 0 edge (HANDLE nodes). A rigid actuator (a ball
or a box, meshed with OBSTACLE tetrahedra) starts just above the top face at a random point and moves down at
constant speed, pressing into the plate and bending it. Heavy mass damping keeps the motion quasi-static, as in
the COMSOL original. Young's modulus and the push are sampled per trajectory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from meshsim.datasets.schema import NodeType
from meshsim.errors import ConfigError
from meshsim.scenarios.base import Scenario

SHAPES = ("sphere", "box")


@dataclass
class DeformingPlateConfig:
    preset: str = "small"
    size: tuple[float, float] = (0.1, 0.06)      # plate length (x, clamped at x = 0) and width (y), m
    thickness: float = 0.006                      # m
    cells: tuple[int, int] = (10, 6)
    layers: int = 2
    actuator_cells: int = 2                       # resolution of the actuator mesh
    num_frames: int = 20
    duration: float = 0.5                         # s
    youngs_modulus: tuple[float, float] = (2.0e5, 1.0e6)   # Pa, log-uniform
    poisson_ratio: tuple[float, float] = (0.3, 0.45)
    density: float = 1000.0
    actuator_size: tuple[float, float] = (0.008, 0.015)    # radius / half extent, m
    actuator_speed: tuple[float, float] = (0.02, 0.06)     # m/s downwards
    actuator_position: tuple[float, float] = (0.4, 0.9)    # x as a fraction of the length; y uniform inside
    material: str = "neohookean"
    friction: float = 0.2
    contact_stiffness: float = 1.77               # penalty pressure per metre of penetration = this * E / thickness
    mass_damping: float = 60.0                    # 1/s: quasi-static response
    cfl: float = 0.5

    def __post_init__(self):
        if min(self.size) <= 0 or self.thickness <= 0 or min(self.cells) < 1 or self.layers < 1:
            raise ConfigError("deforming-plate-3d: need size, thickness > 0 and cells, layers >= 1")
        if self.num_frames < 2 or self.duration <= 0 or self.actuator_cells < 1:
            raise ConfigError("deforming-plate-3d: need num_frames >= 2, duration > 0, actuator_cells >= 1")
        for name in ("youngs_modulus", "actuator_size", "actuator_speed"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ConfigError(f"deforming-plate-3d: range {name} = [{lo}, {hi}] needs 0 < lo <= hi")
        if not 0 <= self.poisson_ratio[0] <= self.poisson_ratio[1] < 0.5:
            raise ConfigError("deforming-plate-3d: poisson_ratio must be an ordered range inside [0, 0.5)")
        if not 0 < self.actuator_position[0] <= self.actuator_position[1] <= 1:
            raise ConfigError("deforming-plate-3d: actuator_position is an ordered fraction range inside (0, 1]")
        if not 0 < self.cfl <= 1 or self.contact_stiffness <= 0 or self.density <= 0 or \
                min(self.friction, self.mass_damping) < 0:
            raise ConfigError("deforming-plate-3d: need 0 < cfl <= 1, contact_stiffness, density > 0 and friction, "
                              f"mass_damping >= 0, got cfl={self.cfl}, friction={self.friction}")


def simulate(cfg: DeformingPlateConfig, seed: int):
    from meshsim.mesh import box, slab, sphere_volume
    from meshsim.physics.fem_model import FemModel
    from meshsim.physics.obstacles import RigidBody
    from meshsim.scenarios.assemble import assemble, simulate_frames

    rng = np.random.default_rng(seed)
    youngs = float(math.exp(rng.uniform(*np.log(cfg.youngs_modulus))))
    nu = float(rng.uniform(*cfg.poisson_ratio))
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    a = float(rng.uniform(*cfg.actuator_size))
    speed = float(rng.uniform(*cfg.actuator_speed))
    x = float(rng.uniform(*cfg.actuator_position)) * cfg.size[0]
    y = float(rng.uniform(0.2, 0.8)) * cfg.size[1]

    plate = slab(cfg.size, cfg.thickness, cfg.cells, layers=cfg.layers)
    clamped = np.isclose(plate.points[:, 0], 0.0)
    contact = dict(stiffness=cfg.contact_stiffness * youngs / cfg.thickness, friction=cfg.friction, damping=0.5,
                   slip_velocity=0.05 * speed)
    if shape == "sphere":
        mesh = sphere_volume(a, cfg.actuator_cells)
        body = RigidBody("sphere", (x, y, cfg.thickness + a), radius=a, velocity=(0.0, 0.0, -speed),
                         mesh_points=mesh.points, **contact)
    else:
        n = cfg.actuator_cells
        mesh = box((2 * a, 2 * a, 2 * a), (n, n, n), origin=(-a, -a, -a))
        body = RigidBody("box", (x, y, cfg.thickness + a), half_extents=(a, a, a), velocity=(0.0, 0.0, -speed),
                         mesh_points=mesh.points, **contact)
    model = FemModel.build(plate.points, plate.cells, density=cfg.density, youngs_modulus=youngs, poisson_ratio=nu,
                           material=cfg.material, fixed=clamped, obstacles=[body], mass_damping=cfg.mass_damping,
                           cfl=cfg.cfl)
    result, frame_dt = simulate_frames(model, cfg.num_frames, cfg.duration)
    attrs = {
        "scenario": "deforming-plate-3d", "seed": int(seed), "material": cfg.material, "youngs_modulus": youngs,
        "poisson_ratio": nu, "density": cfg.density, "actuator_shape": shape, "actuator_size": a,
        "actuator_speed": speed, "actuator_x": x, "actuator_y": y,
    }
    node_type = np.where(clamped, NodeType.HANDLE, NodeType.NORMAL).astype(np.int32)
    return assemble(result, plate.cells, node_type, [mesh], frame_dt, attrs)


SCENARIO = Scenario("deforming-plate-3d", DeformingPlateConfig, simulate,
                    "clamped plate pushed by a kinematic actuator (MeshGraphNets DeformingPlate-like)")
