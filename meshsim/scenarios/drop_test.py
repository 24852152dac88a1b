"""`drop-test-3d`: a layered display-panel-like slab of tetrahedra dropped on a rigid floor.

The panel (cover / core / back layers of different stiffness and density, bottom to top as listed) starts just
above the floor, tilted by a random orientation, with the velocity of a free fall from a random height
(sqrt(2 g h): the fall itself is analytic and not simulated). Gravity acts throughout; the floor is a rigid plane
with penalty contact and friction, stored as a coarse slab of OBSTACLE tetrahedra so that learned models see it.
The stored frames cover the impact and the rebound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from meshsim.datasets.schema import NodeType
from meshsim.errors import ConfigError
from meshsim.scenarios.base import Scenario


@dataclass
class DropTestConfig:
    preset: str = "small"
    size: tuple[float, float] = (0.12, 0.07)      # panel length and width, m
    layer_thickness: list[float] = field(default_factory=lambda: [0.002, 0.003, 0.002])  # m, bottom to top
    layer_youngs_modulus: list[float] = field(default_factory=lambda: [5.0e9, 0.5e9, 5.0e9])  # Pa
    layer_density: list[float] = field(default_factory=lambda: [2500.0, 1200.0, 2700.0])  # kg/m^3
    poisson_ratio: float = 0.3
    stiffness_scale: tuple[float, float] = (0.5, 2.0)  # all moduli scaled by a log-uniform sample of this
    cells: tuple[int, int] = (12, 7)                # elements along length and width
    drop_height: tuple[float, float] = (0.05, 0.5)  # m
    max_tilt: float = 25.0                          # degrees about the horizontal axes
    num_frames: int = 10
    duration: float = 1.5e-3                        # s
    gap: float = 1.0e-4                             # m between the lowest corner and the floor at frame 0
    material: str = "neohookean"
    friction: float = 0.3
    contact_stiffness: float = 0.11                 # penalty pressure per m of penetration = this * E_max / thickness
    contact_damping: float = 0.1
    stiffness_damping: float = 2.0e-8               # Rayleigh beta, s (damps the highest modes)
    cfl: float = 0.5

    def __post_init__(self):
        n = len(self.layer_thickness)
        if n < 1 or len(self.layer_youngs_modulus) != n or len(self.layer_density) != n:
            raise ConfigError("drop-test-3d: layer_thickness, layer_youngs_modulus, layer_density need equal lengths")
        if min(self.layer_thickness) <= 0 or min(self.layer_youngs_modulus) <= 0 or min(self.layer_density) <= 0:
            raise ConfigError("drop-test-3d: layer thicknesses, moduli and densities must be > 0")
        if min(self.size) <= 0 or min(self.cells) < 1 or self.num_frames < 2 or self.duration <= 0:
            raise ConfigError("drop-test-3d: need size > 0, cells >= 1, num_frames >= 2, duration > 0")
        for name in ("stiffness_scale", "drop_height"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ConfigError(f"drop-test-3d: range {name} = [{lo}, {hi}] needs 0 < lo <= hi")
        if not 0 <= self.max_tilt <= 90 or not 0 <= self.poisson_ratio < 0.5:
            raise ConfigError("drop-test-3d: max_tilt must be in [0, 90] degrees and poisson_ratio in [0, 0.5)")
        if not 0 < self.cfl <= 1 or self.contact_stiffness <= 0 or self.gap < 0 or \
                min(self.friction, self.contact_damping, self.stiffness_damping) < 0:
            raise ConfigError("drop-test-3d: need 0 < cfl <= 1, contact_stiffness > 0 and gap, friction, "
                              f"contact_damping, stiffness_damping >= 0, got cfl={self.cfl}, friction={self.friction}")


def _rotation(tilt_x: float, tilt_y: float, yaw: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = (math.cos(tilt_x), math.sin(tilt_x), math.cos(tilt_y), math.sin(tilt_y),
                              math.cos(yaw), math.sin(yaw))
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return ry @ rx @ rz


def simulate(cfg: DropTestConfig, seed: int):
    from meshsim.mesh import box, slab
    from meshsim.physics.fem_model import FemModel
    from meshsim.physics.obstacles import RigidBody
    from meshsim.scenarios.assemble import assemble, simulate_frames

    rng = np.random.default_rng(seed)
    scale = float(math.exp(rng.uniform(*np.log(cfg.stiffness_scale))))
    height = float(rng.uniform(*cfg.drop_height))
    tilt = np.radians(rng.uniform(-cfg.max_tilt, cfg.max_tilt, size=2))
    yaw = float(rng.uniform(0, 2 * math.pi))

    thickness = float(sum(cfg.layer_thickness))
    panel = slab(cfg.size, thickness, cfg.cells, layers=len(cfg.layer_thickness))
    # Move the through-thickness node planes to the layer interfaces (layers may differ in thickness).
    pts = panel.points.copy()
    interfaces = np.concatenate([[0.0], np.cumsum(cfg.layer_thickness)])
    level = np.rint(pts[:, 2] / thickness * len(cfg.layer_thickness)).astype(int)
    pts[:, 2] = interfaces[level]
    layer = np.minimum(level[panel.cells].min(axis=1), len(cfg.layer_thickness) - 1)
    youngs = np.asarray(cfg.layer_youngs_modulus)[layer] * scale
    density = np.asarray(cfg.layer_density)[layer]

    centre = np.array([cfg.size[0] / 2, cfg.size[1] / 2, thickness / 2])
    rotated = (pts - centre) @ _rotation(tilt[0], tilt[1], yaw).T
    rotated[:, 2] += cfg.gap - rotated[:, 2].min()
    speed = math.sqrt(2 * 9.81 * height)

    extent = 0.75 * max(cfg.size)
    floor_mesh = box((2 * extent, 2 * extent, 0.2 * extent), (4, 4, 1), origin=(-extent, -extent, -0.2 * extent))
    floor = RigidBody("plane", (0.0, 0.0, 0.0), normal=(0.0, 0.0, 1.0),
                      stiffness=cfg.contact_stiffness * youngs.max() / thickness, friction=cfg.friction,
                      damping=cfg.contact_damping, slip_velocity=1e-3 * speed, mesh_points=floor_mesh.points)
    model = FemModel.build(rotated, panel.cells, density=density, youngs_modulus=youngs,
                           poisson_ratio=cfg.poisson_ratio, material=cfg.material, gravity=(0.0, 0.0, -9.81),
                           velocity=(0.0, 0.0, -speed), obstacles=[floor], stiffness_damping=cfg.stiffness_damping,
                           cfl=cfg.cfl)
    result, frame_dt = simulate_frames(model, cfg.num_frames, cfg.duration)
    attrs = {
        "scenario": "drop-test-3d", "seed": int(seed), "material": cfg.material, "drop_height": height,
        "impact_speed": speed, "tilt_x": float(np.degrees(tilt[0])), "tilt_y": float(np.degrees(tilt[1])),
        "yaw": float(np.degrees(yaw)), "stiffness_scale": scale, "poisson_ratio": cfg.poisson_ratio,
        "layer_thickness": np.asarray(cfg.layer_thickness, float),
        "layer_youngs_modulus": np.asarray(cfg.layer_youngs_modulus, float) * scale,
        "layer_density": np.asarray(cfg.layer_density, float), "friction": cfg.friction,
        "rebound_speed": float(np.average(result.velocities[-1, :, 2], weights=model.mass_np)),
    }
    node_type = np.full(len(rotated), NodeType.NORMAL, np.int32)
    return assemble(result, panel.cells, node_type, [floor_mesh], frame_dt, attrs)


SCENARIO = Scenario("drop-test-3d", DropTestConfig, simulate,
                    "layered display-panel slab (tets) dropped on a rigid floor at random height/orientation")
