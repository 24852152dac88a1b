"""Rigid obstacles for the FEM solver: plane, sphere (disk in 2D), box, capsule; kinematic or free.

A `RigidBody` with `mass=None` is kinematic: it moves with its prescribed linear and angular velocity (which a
controller may change between frames). With a mass it is a free rigid body that receives the equal and opposite
contact forces of the deformable nodes it touches, plus gravity.

Contact is a penalty pressure `stiffness * depth` along the obstacle normal, acting on each boundary node's share
of the surface area (`meshsim.mesh.boundary_areas`), so the contact force does not change with the mesh
resolution; the node's spring `stiffness * area` has a normal damping ratio, plus regularised
Coulomb friction `-mu |f_n| v_t / sqrt(|v_t|^2 + slip^2)`. In 2D, shapes live in the xy plane and rotate
about z; `angle` sets the orientation. In 3D, `quaternion` (x, y, z, w) does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from meshsim.errors import ConfigError

_FAR = 1.0e30  # half extent of a 2D box along z: the box is a prism through the plane


@dataclass
class RigidBody:
    shape: str                      # "plane" | "sphere" | "box" | "capsule"
    position: tuple                 # body origin (a point on the plane for "plane")
    radius: float = 0.0             # sphere, capsule
    half_extents: tuple = ()        # box: d values
    half_length: float = 0.0        # capsule: half length of its axis (body x axis)
    normal: tuple = ()              # plane: outward normal (world frame)
    angle: float = 0.0              # 2D orientation about z (radians)
    quaternion: tuple = (0.0, 0.0, 0.0, 1.0)  # 3D orientation (x, y, z, w)
    velocity: tuple = ()            # linear velocity, zeros if empty
    angular_velocity: float | tuple = 0.0     # 2D: rate about z; 3D: 3-vector
    mass: float | None = None       # None: kinematic
    stiffness: float = 1.0e9        # penalty pressure per unit penetration, Pa/m (x a node's boundary area: N/m)
    friction: float = 0.0           # Coulomb coefficient
    damping: float = 0.1            # normal damping ratio of the penalty spring (0 = elastic contact)
    slip_velocity: float = 1.0e-3   # friction regularisation, m/s
    mesh_points: np.ndarray | None = field(default=None, repr=False)  # body-frame points for output

    def check(self, dim: int) -> None:
        where = f"rigid body {self.shape!r}"
        if self.shape not in ("plane", "sphere", "box", "capsule"):
            raise ConfigError(f"{where}: unknown shape; use plane, sphere, box or capsule")
        if len(self.position) != dim:
            raise ConfigError(f"{where}: position needs {dim} values, got {len(self.position)}")
        if self.shape in ("sphere", "capsule") and not self.radius > 0:
            raise ConfigError(f"{where}: radius must be > 0, got {self.radius}")
        if self.shape == "box" and (len(self.half_extents) != dim or min(self.half_extents) <= 0):
            raise ConfigError(f"{where}: half_extents needs {dim} positive values, got {self.half_extents}")
        if self.shape == "capsule" and self.half_length < 0:
            raise ConfigError(f"{where}: half_length must be >= 0, got {self.half_length}")
        if self.shape == "plane":
            if len(self.normal) != dim or np.linalg.norm(self.normal) == 0:
                raise ConfigError(f"{where}: normal needs {dim} values, not all zero")
            if self.mass is not None:
                raise ConfigError(f"{where}: a plane is infinite and must be kinematic (mass=None)")
        if self.mass is not None and not self.mass > 0:
            raise ConfigError(f"{where}: mass must be > 0 (or None for a kinematic body), got {self.mass}")
        if self.stiffness <= 0 or self.friction < 0 or self.damping < 0 or self.slip_velocity <= 0:
            raise ConfigError(f"{where}: stiffness and slip_velocity must be > 0, friction and damping >= 0")
        if self.velocity and len(self.velocity) != dim:
            raise ConfigError(f"{where}: velocity needs {dim} values, got {len(self.velocity)}")

    # -- packed values for the kernels ---------------------------------------------------------------------
    def shape_params(self, dim: int) -> np.ndarray:
        if self.shape == "plane":
            n = np.zeros(3)
            n[:dim] = np.asarray(self.normal, float) / np.linalg.norm(self.normal)
            return np.append(n, 0.0)
        if self.shape == "sphere":
            return np.array([self.radius, 0.0, 0.0, 0.0])
        if self.shape == "box":
            h = np.full(3, _FAR)
            h[:dim] = self.half_extents
            return np.append(h, 0.0)
        return np.array([self.radius, self.half_length, 0.0, 0.0])

    def contact_params(self) -> np.ndarray:
        return np.array([self.stiffness, self.friction, self.damping, self.slip_velocity])

    def rotation_quaternion(self, dim: int) -> np.ndarray:
        if dim == 2:
            return np.array([0.0, 0.0, math.sin(self.angle / 2), math.cos(self.angle / 2)])
        q = np.asarray(self.quaternion, float)
        return q / np.linalg.norm(q)

    def omega3(self, dim: int) -> np.ndarray:
        if dim == 2:
            return np.array([0.0, 0.0, float(self.angular_velocity)])
        w = np.zeros(3) if np.isscalar(self.angular_velocity) else np.asarray(self.angular_velocity, float)
        return w

    def inverse_inertia(self, dim: int) -> np.ndarray:
        """Body-frame inverse inertia diagonal (2D: per unit thickness about z); zeros for kinematic bodies."""
        if self.mass is None:
            return np.zeros(3)
        m = self.mass
        if self.shape == "sphere":
            i = np.full(3, m * self.radius**2 / 2 if dim == 2 else 0.4 * m * self.radius**2)
        else:
            h = (np.asarray(self.half_extents, float) if self.shape == "box"
                 else np.array([self.half_length + self.radius] + [self.radius] * (dim - 1)))
            h3 = np.append(h, 0.0) if dim == 2 else h
            i = m / 3.0 * np.array([h3[1] ** 2 + h3[2] ** 2, h3[0] ** 2 + h3[2] ** 2, h3[0] ** 2 + h3[1] ** 2])
        return 1.0 / i


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def quat_from_axis_angle(axis, angle: float) -> tuple:
    a = np.asarray(axis, float)
    a = a / np.linalg.norm(a)
    s = math.sin(angle / 2)
    return (a[0] * s, a[1] * s, a[2] * s, math.cos(angle / 2))
