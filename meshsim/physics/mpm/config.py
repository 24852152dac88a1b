"""MPM configuration: grid resolution, time step, gravity, walls and colliders (plain data, no Warp).

The domain is [0, 1]^3 with `res` cells per side (dx = 1/res). Boundary kinds (`WALL_KINDS`) are what the grid
update does to a node's velocity at a wall or inside a collider; see `grid._boundary`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from meshsim.errors import ConfigError

WALL_KINDS = {"free_slip": 0, "no_slip": 1, "sticky": 2}
MAX_COLLIDERS = 58  # 6 walls + colliders fit the 64-bit mask of boundary conditions the grid adjoint replays


@dataclass
class PlaneCollider:
    """Half-space {x : (x - point) . normal < 0} is solid; `normal` points into the free side."""

    point: tuple[float, float, float]
    normal: tuple[float, float, float]
    kind: str = "free_slip"


@dataclass
class SphereCollider:
    """A solid ball at `center` with `radius`."""

    center: tuple[float, float, float]
    radius: float
    kind: str = "free_slip"


@dataclass
class MPMConfig:
    """Grid, time step and boundary set-up of one simulation."""

    res: int = 20  # cells per side of the unit cube
    dt: float = 5e-4  # seconds per step
    gravity: tuple[float, float, float] = (0.0, -9.8, 0.0)
    wall: str = "free_slip"  # free_slip | no_slip | sticky (see `grid._boundary`)
    wall_band: int = 3  # nodes within this many cells of a face obey the wall condition (same on both sides)
    clip: float = 0.5  # particle positions are clamped to [clip dx, 1 - clip dx]
    planes: list[PlaneCollider] = field(default_factory=list)
    spheres: list[SphereCollider] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.res < 4:
            raise ConfigError(f"mpm.res must be >= 4 cells per side, got {self.res}")
        if not self.dt > 0:
            raise ConfigError(f"mpm.dt must be > 0 seconds, got {self.dt}")
        if self.wall not in WALL_KINDS:
            raise ConfigError(f"mpm.wall must be one of {', '.join(WALL_KINDS)}, got {self.wall!r}")
        if not 0 <= self.wall_band < self.res // 2:
            raise ConfigError(f"mpm.wall_band must be in [0, res/2), got {self.wall_band}")
        if not 0 <= self.clip <= self.wall_band + 0.5:
            raise ConfigError(f"mpm.clip must be in [0, wall_band + 0.5] cells, got {self.clip}")
        for c in [*self.planes, *self.spheres]:
            if c.kind not in WALL_KINDS:
                raise ConfigError(f"collider kind must be one of {', '.join(WALL_KINDS)}, got {c.kind!r}")
        if len(self.planes) + len(self.spheres) > MAX_COLLIDERS:
            raise ConfigError(f"at most {MAX_COLLIDERS} colliders (planes + spheres), got "
                              f"{len(self.planes) + len(self.spheres)}")
        for s in self.spheres:
            if not s.radius > 0:
                raise ConfigError(f"sphere collider radius must be > 0, got {s.radius}")
        for p in self.planes:
            if np.linalg.norm(p.normal) == 0:
                raise ConfigError("plane collider normal must be non-zero")

    @property
    def dx(self) -> float:
        return 1.0 / self.res
