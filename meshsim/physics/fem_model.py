"""`FemModel`: what an explicit FEM run never changes, built once from mesh, material, constraints and obstacles.

    model = FemModel.build(points, cells, density=1000.0, youngs_modulus=1e6, poisson_ratio=0.3,
                           obstacles=[RigidBody("plane", (0, 0), normal=(0, 1))], gravity=(0, -9.81))
    solver = FemSolver(model)
    s0, s1 = model.state(), model.state()
    solver.step(s0, s1, model.control(), model.forces(), model.stable_dt)

`build` validates its inputs (one-line `MeshError` / `ConfigError`), then computes the reference geometry (Dm^-1,
rest volumes), the Lame parameters, lumped masses, each node's share of the boundary area, the Warp structs the
kernels read (`Elements`, `Nodes`, `Bodies`, fem_kernels.py), node-node contact between separate bodies
(contact.py) and the stable substep. The model is frozen: its attributes cannot be reassigned and its numpy
arrays are read-only; its Warp arrays are not copied per run, so write into them at your own risk. Its
factories make what a step reads and writes: `state()`, `control()` (what a caller drives) and `forces()`
(a substep's accumulators). `density`, `youngs_modulus`, `poisson_ratio` are scalars or per-element arrays;
`fixed` constrains nodes (bool [N]) or single components (bool [N, d]) to `prescribed_velocity` (zero by
default); `external_force` [N, d] adds constant nodal loads; `velocity` is the initial node velocity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from types import SimpleNamespace

import numpy as np
import warp as wp

from meshsim.errors import ConfigError, MeshError
from meshsim.kernels import init_warp
from meshsim.mesh import boundary_areas
from meshsim.physics.contact import BodyContact
from meshsim.physics.fem_kernels import SHAPE_ID, make_kernels
from meshsim.physics.fem_state import FemControl, FemForces, FemState
from meshsim.physics.hyperelastic import MATERIAL_ID, lame
from meshsim.physics.obstacles import RigidBody

_DTYPES = {"float32": wp.float32, "float64": wp.float64}


@dataclass(frozen=True, eq=False)
class FemModel:
    dim: int
    device: object  # Warp device (or its name)
    scalar: type  # wp.float32 | wp.float64
    np_dtype: type
    k: SimpleNamespace  # kernels and structs of (dim, scalar), fem_kernels.make_kernels
    material: str
    plane_stress: int  # 1: 2D plane stress, 0: plane strain or 3D
    mass_damping: float  # Rayleigh alpha [1/s]
    stiffness_damping: float  # Rayleigh beta [s]
    cfl: float
    gravity: np.ndarray  # [d]
    points: np.ndarray  # [N, d] reference positions (float64)
    cells: np.ndarray  # [M, d + 1] int32
    dm_inv_np: np.ndarray  # [M, d, d]
    volume_np: np.ndarray  # [M] rest volume (area x thickness in 2D)
    density_np: np.ndarray  # [M]
    youngs_np: np.ndarray  # [M]
    poisson_np: np.ndarray  # [M]
    mu_np: np.ndarray  # [M] Lame parameters
    lam_np: np.ndarray  # [M]
    mass_np: np.ndarray  # [N] lumped
    free_np: np.ndarray  # [N, d] 1 per free component
    contact_area_np: np.ndarray  # [N] share of the boundary area (0: never touches an obstacle)
    initial_velocity: np.ndarray  # [N, d]
    obstacles: tuple  # RigidBody, as given (their initial poses and velocities seed `state()`)
    mu: wp.array  # the Lame parameters on the device: what `control()` carries by default
    lam: wp.array
    elements: object  # k.Elements
    nodes: object  # k.Nodes
    bodies: object  # k.Bodies
    body_contact: BodyContact | None  # contact between separate deformable bodies
    dt_element: np.ndarray  # [M] critical step of each undeformed element (checked again as it deforms)
    stable: tuple  # (stable substep incl. cfl, what limits it)

    @property
    def stable_dt(self) -> float:
        return self.stable[0]

    @classmethod
    def build(
        cls,
        points,
        cells,
        *,
        density=1000.0,
        youngs_modulus=1.0e6,
        poisson_ratio=0.3,
        material: str = "neohookean",
        plane: str = "strain",
        thickness: float = 1.0,
        gravity=None,
        mass_damping: float = 0.0,
        stiffness_damping: float = 0.0,
        fixed=None,
        prescribed_velocity=None,
        external_force=None,
        velocity=None,
        obstacles: tuple | list = (),
        contact_nodes=None,
        body_contact: dict | None = None,
        cfl: float = 0.5,
        dtype: str = "float32",
        device: str | None = None,
    ) -> FemModel:
        init_warp()
        points = np.asarray(points, dtype=np.float64)
        cells = np.asarray(cells)
        if points.ndim != 2 or points.shape[1] not in (2, 3):
            raise MeshError(f"points must have shape [N, 2] or [N, 3], got {points.shape}")
        d = points.shape[1]
        if cells.ndim != 2 or cells.shape[1] != d + 1:
            raise MeshError(f"{d}D FEM needs cells of shape [M, {d + 1}], got {cells.shape}")
        if len(cells) == 0 or cells.min() < 0 or cells.max() >= len(points):
            raise MeshError(f"cells must be non-empty and index 0..{len(points) - 1}")
        if not np.isfinite(points).all():
            raise MeshError("points contain NaN or infinite values")
        if material not in MATERIAL_ID:
            raise ConfigError(f"unknown material {material!r}; use one of {', '.join(MATERIAL_ID)}")
        if plane not in ("strain", "stress"):
            raise ConfigError(f"plane must be 'strain' or 'stress', got {plane!r}")
        if dtype not in _DTYPES:
            raise ConfigError(f"dtype must be float32 or float64, got {dtype!r}")
        if not 0 < cfl <= 1:
            raise ConfigError(f"cfl must be in (0, 1], got {cfl}")
        if thickness <= 0 or mass_damping < 0 or stiffness_damping < 0:
            raise ConfigError("thickness must be > 0 and damping coefficients >= 0")
        device = device or wp.get_preferred_device()
        scalar = _DTYPES[dtype]
        np_dtype = np.float32 if dtype == "float32" else np.float64
        k = make_kernels(d, scalar)
        plane_stress = int(d == 2 and plane == "stress")
        gravity = np.zeros(d) if gravity is None else np.asarray(gravity, dtype=np.float64)
        if gravity.shape != (d,):
            raise ConfigError(f"gravity needs {d} values, got {gravity.shape}")
        cells = cells.astype(np.int32)
        n, m_cells = len(points), len(cells)

        # Reference geometry: Dm^-1 and rest volume per element.
        Dm = np.stack([points[cells[:, k + 1]] - points[cells[:, 0]] for k in range(d)], axis=-1)
        det = np.linalg.det(Dm)
        vol = np.abs(det) / math.factorial(d) * (thickness if d == 2 else 1.0)
        bad = np.flatnonzero(det <= 1e-14 * np.max(np.abs(det)))
        if len(bad):
            raise MeshError(f"element {bad[0]} is inverted or degenerate in the reference mesh "
                            f"(signed volume {det[bad[0]]:.3g}): reorder its nodes or fix the mesh")
        dm_inv = np.linalg.inv(Dm)

        def per_element(value, name):
            arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (m_cells,)).copy()
            if not np.isfinite(arr).all():
                raise ConfigError(f"{name} must be finite")
            return arr

        rho = per_element(density, "density")
        youngs = per_element(youngs_modulus, "youngs_modulus")
        nu = per_element(poisson_ratio, "poisson_ratio")
        if rho.min() <= 0 or youngs.min() <= 0:
            raise ConfigError("density and youngs_modulus must be > 0 in every element")
        if nu.min() < 0 or nu.max() >= 0.5:
            raise ConfigError("poisson_ratio must be in [0, 0.5) in every element")
        mu, lam = lame(youngs, nu, plane_stress=bool(plane_stress))
        mass = np.zeros(n)
        np.add.at(mass, cells.ravel(), np.repeat(rho * vol / (d + 1), d + 1))

        free = np.ones((n, d))
        if fixed is not None:
            fixed = np.asarray(fixed, dtype=bool)
            if fixed.shape == (n,):
                fixed = np.repeat(fixed[:, None], d, axis=1)
            if fixed.shape != (n, d):
                raise ConfigError(f"fixed must be a bool mask [N] or [N, {d}], got {fixed.shape}")
            free[fixed] = 0.0
        # Obstacles press on the boundary: each node carries its share of the boundary area, so a penalty
        # pressure (RigidBody.stiffness, Pa/m) gives the same force on any mesh. Interior nodes (area 0) and nodes
        # outside `contact_nodes` never touch an obstacle.
        contact_area = boundary_areas(points, cells, thickness if d == 2 else 1.0)
        if contact_nodes is not None:
            contact_nodes = np.asarray(contact_nodes, dtype=bool)
            if contact_nodes.shape != (n,):
                raise ConfigError(f"contact_nodes must be a bool mask [{n}], got {contact_nodes.shape}")
            contact_area = np.where(contact_nodes, contact_area, 0.0)
        obstacles = tuple(obstacles)
        for body in obstacles:
            if not isinstance(body, RigidBody):
                raise ConfigError(f"obstacles must be RigidBody instances, got {type(body).__name__}")
            body.check(d)

        def arr(values, dtype=None):
            return wp.array(np.asarray(values, dtype=np_dtype), dtype=dtype or scalar, device=device)

        # What the kernels read and no substep changes, as Warp structs (fem_kernels.py).
        elements = k.Elements()
        elements.cells = wp.array(cells, dtype=k.cell, device=device)
        elements.dm_inv = arr(dm_inv, k.mat)
        elements.volume = arr(vol)
        elements.material = MATERIAL_ID[material]
        nodes = k.Nodes()
        nodes.mass = arr(mass)
        nodes.free = arr(free, k.vec)
        nodes.prescribed_v = arr(np.zeros((n, d)) if prescribed_velocity is None
                                 else np.asarray(prescribed_velocity, float).reshape(n, d), k.vec)
        nodes.f_ext = arr(np.zeros((n, d)) if external_force is None
                          else np.asarray(external_force, float).reshape(n, d), k.vec)
        nodes.contact_area = arr(contact_area)
        b = obstacles
        bodies = k.Bodies()
        bodies.shape = wp.array(np.array([SHAPE_ID[o.shape] for o in b], np.int32).reshape(-1), dtype=wp.int32,
                                device=device)
        bodies.params = arr(np.array([o.shape_params(d) for o in b]).reshape(-1, 4), k.vec4)
        bodies.contact = arr(np.array([o.contact_params() for o in b]).reshape(-1, 4), k.vec4)
        bodies.inv_mass = arr(np.array([0.0 if o.mass is None else 1.0 / o.mass for o in b]))
        bodies.inv_inertia = arr(np.array([o.inverse_inertia(d) for o in b]).reshape(-1, 3), k.vec3)
        # Contact between separate deformable bodies (connected components), e.g. dict(radius=, stiffness=).
        between = None
        if body_contact:
            between = BodyContact(cells, mass, nodes.mass, scalar=scalar, device=device, **body_contact)
        initial_velocity = np.zeros((n, d)) if velocity is None else np.broadcast_to(
            np.asarray(velocity, float), (n, d)).copy()
        dt_element, stable = _stable_dt(points, cells, dm_inv, vol, mu, lam, rho, mass, contact_area, obstacles,
                                        between, stiffness_damping, cfl)
        model = cls(
            dim=d, device=device, scalar=scalar, np_dtype=np_dtype, k=k, material=material, plane_stress=plane_stress,
            mass_damping=float(mass_damping), stiffness_damping=float(stiffness_damping), cfl=float(cfl),
            gravity=gravity, points=points, cells=cells, dm_inv_np=dm_inv, volume_np=vol, density_np=rho,
            youngs_np=youngs, poisson_np=nu, mu_np=mu, lam_np=lam, mass_np=mass, free_np=free,
            contact_area_np=contact_area, initial_velocity=initial_velocity, obstacles=obstacles, mu=arr(mu),
            lam=arr(lam), elements=elements, nodes=nodes, bodies=bodies, body_contact=between,
            dt_element=dt_element, stable=stable)
        for f in fields(model):
            value = getattr(model, f.name)
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
        return model

    # -- what a step reads and writes ------------------------------------------------------------------------
    def _array(self, values, dtype=None, requires_grad=False):
        return wp.array(np.asarray(values, dtype=self.np_dtype), dtype=dtype or self.scalar, device=self.device,
                        requires_grad=requires_grad)

    def state(self, requires_grad: bool = False, positions=None) -> FemState:
        """A fresh state: the reference configuration (or `positions`), initial velocities and obstacle poses."""
        d, arr, b = self.dim, self._array, self.obstacles
        rg = requires_grad
        return FemState(
            x=arr(self.points if positions is None else positions, self.k.vec, rg),
            v=arr(self.initial_velocity, self.k.vec, rg),
            contact=arr(np.zeros((len(self.points), d)), self.k.vec, rg),
            body_pos=arr(np.array([o.position for o in b], float).reshape(-1, d), self.k.vec, rg),
            body_rot=arr(np.array([o.rotation_quaternion(d) for o in b]).reshape(-1, 4), self.k.quat, rg),
            body_vel=arr(np.array([o.velocity or np.zeros(d) for o in b], float).reshape(-1, d), self.k.vec, rg),
            body_omega=arr(np.array([o.omega3(d) for o in b]).reshape(-1, 3), self.k.vec3, rg),
        )

    def control(self) -> FemControl:
        """The model's own inputs: its Lame arrays (shared, not copied)."""
        return FemControl(mu=self.mu, lam=self.lam)

    def forces(self, requires_grad: bool = False) -> FemForces:
        """Force accumulators of one substep (zeroed)."""
        z = lambda n, t: wp.zeros(n, dtype=t, device=self.device, requires_grad=requires_grad)  # noqa: E731
        nb = len(self.obstacles)
        return FemForces(f=z(len(self.points), self.k.vec), body_force=z(nb, self.k.vec3),
                         body_torque=z(nb, self.k.vec3), between_bodies=z(len(self.points), self.k.vec))


def _stable_dt(points, cells, dm_inv, volume, mu, lam, density, mass, contact_area, obstacles, between,
               stiffness_damping, cfl):
    """(critical step per element, (dt, what limits it)): CFL of the stiffest element, penalty springs, both
    reduced for damping."""
    if points.shape[1] == 2:
        edges = [points[cells[:, a]] - points[cells[:, b]] for a, b in ((0, 1), (1, 2), (2, 0))]
        longest = np.max([np.linalg.norm(e, axis=1) for e in edges], axis=0)
        area = np.abs(np.linalg.det(np.linalg.inv(dm_inv))) / 2
        h = 2 * area / longest  # smallest altitude
    else:
        p = points[cells]
        faces = [(1, 2, 3), (0, 2, 3), (0, 1, 3), (0, 1, 2)]
        face_area = np.max([0.5 * np.linalg.norm(np.cross(p[:, b] - p[:, a], p[:, c] - p[:, a]), axis=1)
                            for a, b, c in faces], axis=0)
        h = 3 * volume / face_area
    c = np.sqrt((lam + 2 * mu) / density)
    omega = 2 * c / h
    zeta = stiffness_damping * omega / 2
    dt_el = 2 / omega * (np.sqrt(1 + zeta**2) - zeta)
    e = int(np.argmin(dt_el))
    dt, what = float(dt_el[e]), f"element {e}"
    touching = contact_area > 0  # penalty spring of node i: stiffness * area_i against its mass
    m_per_area = (mass[touching] / contact_area[touching]).min() if touching.any() else np.inf
    for i, body in enumerate(obstacles):
        zc = body.damping
        dt_c = 2 * math.sqrt(m_per_area / body.stiffness) * (math.sqrt(1 + zc**2) - zc)
        if dt_c < dt:
            dt, what = dt_c, f"contact stiffness of obstacle {i}"
    if between is not None and between.stable_dt() < dt:
        dt, what = between.stable_dt(), "the stiffness of contact between bodies"
    return dt_el, (cfl * dt, what)
