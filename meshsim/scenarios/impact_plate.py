"""`impact-plate-2d`: a rigid ball strikes a clamped plate, like HCMT's Impact Plate dataset.

Half model of a plate section in plane strain (per metre of depth): the plate spans x in [0, L], y in [0, H];
x = 0 is the symmetry line (SYMMETRIC nodes: x fixed), x = L is clamped (HANDLE nodes). A steel ball (a free
rigid disk, meshed with OBSTACLE nodes that move rigidly) flies in at a random speed and angle, hits the top face
at a random point, bends the plate and bounces back. Plate density and Young's modulus are sampled per
trajectory. By symmetry, the model is a plate of span 2L hit by two mirror-image balls.

Stored: cells (plate + ball triangles), world_pos, node_type, field "stress" (nodal von Mises, Pa; zero on the
ball), globals (energies), attrs with every sampled parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from meshsim.datasets.schema import NodeType
from meshsim.errors import ConfigError
from meshsim.scenarios.base import Scenario


@dataclass
class ImpactPlateConfig:
    preset: str = "small"
    plate_length: float = 0.1            # half span L, m
    plate_thickness: float = 0.01        # H, m
    cells_x: int = 40                    # elements along x (2 triangles per quad)
    cells_y: int = 4
    ball_rings: int = 4                  # node rings of the ball mesh (ring i holds 6 i nodes)
    num_frames: int = 20
    duration: float = 8.0e-3             # s from the first to the last frame
    approach_time: float = 2.0e-4        # s of free flight before contact
    density: tuple[float, float] = (1000.0, 2000.0)         # kg/m^3, sampled uniformly
    youngs_modulus: tuple[float, float] = (0.5e9, 2.0e9)    # Pa, sampled log-uniformly
    poisson_ratio: tuple[float, float] = (0.3, 0.3)
    ball_radius: tuple[float, float] = (0.008, 0.015)       # m
    ball_speed: tuple[float, float] = (4.0, 12.0)           # m/s
    impact_angle: tuple[float, float] = (-30.0, 30.0)       # degrees from the downward vertical, + towards clamp
    impact_position: tuple[float, float] = (0.3, 0.6)       # target x as a fraction of L
    ball_density: float = 7800.0
    material: str = "neohookean"
    friction: float = 0.2
    contact_stiffness: float = 10.0      # penalty pressure per metre of penetration = this * E / plate_thickness
    contact_damping: float = 0.05
    stiffness_damping: float = 0.0       # Rayleigh beta, s
    cfl: float = 0.5

    def __post_init__(self):
        if self.cells_x < 2 or self.cells_y < 1 or self.ball_rings < 1 or self.num_frames < 2:
            raise ConfigError("impact-plate-2d: need cells_x >= 2, cells_y >= 1, ball_rings >= 1, num_frames >= 2")
        for name in ("plate_length", "plate_thickness", "duration", "approach_time", "ball_density",
                     "contact_stiffness"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"impact-plate-2d: {name} must be > 0, got {getattr(self, name)}")
        for name in ("density", "youngs_modulus", "poisson_ratio", "ball_radius", "ball_speed", "impact_angle",
                     "impact_position"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ConfigError(f"impact-plate-2d: range {name} = [{lo}, {hi}] has lo > hi")
        if self.density[0] <= 0 or self.youngs_modulus[0] <= 0 or self.ball_radius[0] <= 0 or self.ball_speed[0] <= 0:
            raise ConfigError("impact-plate-2d: density, youngs_modulus, ball_radius, ball_speed must be > 0")
        if not (0 <= self.poisson_ratio[0] and self.poisson_ratio[1] < 0.5):
            raise ConfigError("impact-plate-2d: poisson_ratio must lie in [0, 0.5)")
        if not (0 < self.impact_position[0] and self.impact_position[1] < 1):
            raise ConfigError("impact-plate-2d: impact_position is a fraction of the plate length in (0, 1)")
        if not (-80 <= self.impact_angle[0] and self.impact_angle[1] <= 80):
            raise ConfigError("impact-plate-2d: impact_angle must lie in [-80, 80] degrees")
        if not 0 < self.cfl <= 1 or min(self.friction, self.contact_damping, self.stiffness_damping) < 0:
            raise ConfigError("impact-plate-2d: need 0 < cfl <= 1 and friction, contact_damping, stiffness_damping "
                              f">= 0, got cfl={self.cfl}, friction={self.friction}")


def sample_parameters(cfg: ImpactPlateConfig, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    uniform = lambda r: float(rng.uniform(*r))  # noqa: E731
    return {
        "density": uniform(cfg.density),
        "youngs_modulus": float(math.exp(rng.uniform(math.log(cfg.youngs_modulus[0]),
                                                     math.log(cfg.youngs_modulus[1])))),
        "poisson_ratio": uniform(cfg.poisson_ratio),
        "ball_radius": uniform(cfg.ball_radius),
        "ball_speed": uniform(cfg.ball_speed),
        "impact_angle": uniform(cfg.impact_angle),
        "impact_x": uniform(cfg.impact_position) * cfg.plate_length,
    }


def plate_mesh(cfg: ImpactPlateConfig):
    from meshsim.mesh import rectangle

    return rectangle((cfg.plate_length, cfg.plate_thickness), (cfg.cells_x, cfg.cells_y))


def ball_mesh(cfg: ImpactPlateConfig, radius: float):
    from meshsim.mesh import disk

    return disk(radius, cfg.ball_rings)


def simulate(cfg: ImpactPlateConfig, seed: int):
    from meshsim.physics.fem_model import FemModel
    from meshsim.physics.obstacles import RigidBody
    from meshsim.scenarios.assemble import assemble, simulate_frames

    p = sample_parameters(cfg, seed)
    plate = plate_mesh(cfg)
    ball = ball_mesh(cfg, p["ball_radius"])
    pts = np.asarray(plate.points, float)
    L, H, r = cfg.plate_length, cfg.plate_thickness, p["ball_radius"]
    tol = 1e-9 * L
    symmetric = np.abs(pts[:, 0]) < tol
    clamped = np.abs(pts[:, 0] - L) < tol
    fixed = np.zeros(pts.shape, bool)
    fixed[symmetric, 0] = True
    fixed[clamped] = True

    theta = math.radians(p["impact_angle"])
    direction = np.array([math.sin(theta), -math.cos(theta)])
    velocity = p["ball_speed"] * direction
    target = np.array([p["impact_x"], H + r])  # ball centre at first touch if it flew straight
    start = target - velocity * cfg.approach_time
    mass = cfg.ball_density * math.pi * r * r  # per metre depth
    body = RigidBody("sphere", tuple(start), radius=r, velocity=tuple(velocity), mass=mass,
                     stiffness=cfg.contact_stiffness * p["youngs_modulus"] / H, friction=cfg.friction,
                     damping=cfg.contact_damping, slip_velocity=1e-3 * p["ball_speed"],
                     mesh_points=np.asarray(ball.points, float))
    model = FemModel.build(pts, plate.cells, density=p["density"], youngs_modulus=p["youngs_modulus"],
                           poisson_ratio=p["poisson_ratio"], material=cfg.material, plane="strain", fixed=fixed,
                           obstacles=[body], stiffness_damping=cfg.stiffness_damping, cfl=cfg.cfl)
    res, frame_dt = simulate_frames(model, cfg.num_frames, cfg.duration)

    node_type = np.full(len(pts), NodeType.NORMAL, np.int32)
    node_type[symmetric] = NodeType.SYMMETRIC
    node_type[clamped] = NodeType.HANDLE
    attrs = {
        "scenario": "impact-plate-2d", "seed": int(seed), "material": cfg.material, "plane": "strain",
        "density": p["density"], "youngs_modulus": p["youngs_modulus"], "poisson_ratio": p["poisson_ratio"],
        "ball_radius": r, "ball_speed": p["ball_speed"], "impact_angle": p["impact_angle"],
        "impact_x": p["impact_x"], "ball_mass": mass, "ball_density": cfg.ball_density,
        "plate_length": L, "plate_thickness": H, "friction": cfg.friction,
        "ball_rebound_speed": float(np.linalg.norm(res.body_velocity[-1, 0])),
    }
    return assemble(res, plate.cells, node_type, [ball], frame_dt, attrs)


SCENARIO = Scenario("impact-plate-2d", ImpactPlateConfig, simulate,
                    "2D plate (half model) struck by a free rigid ball; HCMT Impact Plate-like")
