"""Explicit FEM for linear triangles (2D plane strain / plane stress) and linear tetrahedra (3D), in Warp.

    solver = FemSolver(points, cells, density=1000.0, youngs_modulus=1e6, poisson_ratio=0.3,
                       material="neohookean", obstacles=[RigidBody("plane", (0, 0), normal=(0, 1))],
                       gravity=(0, -9.81), fixed=fixed_mask)
    result = solver.simulate(num_frames=50, frame_dt=1e-3)   # FemResult: positions, stress, energies, ...

Lumped mass, symplectic Euler (velocity first, then position with the new velocity), optional Rayleigh damping
(mass-proportional `mass_damping` [1/s], stiffness-proportional `stiffness_damping` [s]). The substep is chosen
from the CFL limit of the stiffest element, the penalty springs and the damping. Density, Young's modulus and
Poisson ratio may differ per element. `fixed` constrains nodes (bool [N]) or single components (bool [N, d],
e.g. a symmetry plane); constrained components follow `prescribed_velocity` (zero by default).
`external_force` [N, d] adds constant nodal loads (N), e.g. a traction integrated over a face.
"""

from __future__ import annotations

import math

import numpy as np
import warp as wp

from meshsim.errors import ConfigError, MeshError, SimulationError
from meshsim.kernels import init_warp
from meshsim.mesh import boundary_areas
from meshsim.physics.fem_kernels import SHAPE_ID, make_kernels
from meshsim.physics.fem_state import FemResult, FemScratch, FemState, collect_frames
from meshsim.physics.hyperelastic import MATERIAL_ID, lame
from meshsim.physics.obstacles import RigidBody, quat_to_matrix

_DTYPES = {"float32": wp.float32, "float64": wp.float64}


class FemSolver:
    def __init__(
        self,
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
    ):
        init_warp()
        points = np.asarray(points, dtype=np.float64)
        cells = np.asarray(cells)
        if points.ndim != 2 or points.shape[1] not in (2, 3):
            raise MeshError(f"points must have shape [N, 2] or [N, 3], got {points.shape}")
        self.dim = d = points.shape[1]
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
        self.device = device or wp.get_preferred_device()
        self.scalar = _DTYPES[dtype]
        self.np_dtype = np.float32 if dtype == "float32" else np.float64
        self.k = make_kernels(d, self.scalar)
        self.material = material
        self.plane_stress = int(d == 2 and plane == "stress")
        self.mass_damping = float(mass_damping)
        self.stiffness_damping = float(stiffness_damping)
        self.cfl = float(cfl)
        self.gravity = np.zeros(d) if gravity is None else np.asarray(gravity, dtype=np.float64)
        if self.gravity.shape != (d,):
            raise ConfigError(f"gravity needs {d} values, got {self.gravity.shape}")
        self.points = points
        self.cells = cells.astype(np.int32)
        m_cells = len(cells)

        # Reference geometry: Dm^-1 and rest volume per element.
        Dm = np.stack([points[cells[:, k + 1]] - points[cells[:, 0]] for k in range(d)], axis=-1)
        det = np.linalg.det(Dm)
        vol = np.abs(det) / math.factorial(d) * (thickness if d == 2 else 1.0)
        bad = np.flatnonzero(det <= 1e-14 * np.max(np.abs(det)))
        if len(bad):
            raise MeshError(f"element {bad[0]} is inverted or degenerate in the reference mesh "
                            f"(signed volume {det[bad[0]]:.3g}): reorder its nodes or fix the mesh")
        self.dm_inv_np = np.linalg.inv(Dm)
        self.volume_np = vol

        def per_element(value, name):
            arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (m_cells,)).copy()
            if not np.isfinite(arr).all():
                raise ConfigError(f"{name} must be finite")
            return arr

        self.density_np = per_element(density, "density")
        self.youngs_np = per_element(youngs_modulus, "youngs_modulus")
        self.poisson_np = per_element(poisson_ratio, "poisson_ratio")
        if self.density_np.min() <= 0 or self.youngs_np.min() <= 0:
            raise ConfigError("density and youngs_modulus must be > 0 in every element")
        if self.poisson_np.min() < 0 or self.poisson_np.max() >= 0.5:
            raise ConfigError("poisson_ratio must be in [0, 0.5) in every element")
        self.mu_np, self.lam_np = lame(self.youngs_np, self.poisson_np, plane_stress=bool(self.plane_stress))
        self.mass_np = np.zeros(len(points))
        np.add.at(self.mass_np, cells.ravel(), np.repeat(self.density_np * vol / (d + 1), d + 1))

        free = np.ones((len(points), d))
        if fixed is not None:
            fixed = np.asarray(fixed, dtype=bool)
            if fixed.shape == (len(points),):
                fixed = np.repeat(fixed[:, None], d, axis=1)
            if fixed.shape != (len(points), d):
                raise ConfigError(f"fixed must be a bool mask [N] or [N, {d}], got {fixed.shape}")
            free[fixed] = 0.0
        self.free_np = free
        # Obstacles press on the boundary: each node carries its share of the boundary area, so a penalty
        # pressure (RigidBody.stiffness, Pa/m) gives the same force on any mesh. Interior nodes (area 0) and nodes
        # outside `contact_nodes` never touch an obstacle.
        self.contact_area_np = boundary_areas(points, self.cells, thickness if d == 2 else 1.0)
        if contact_nodes is not None:
            contact_nodes = np.asarray(contact_nodes, dtype=bool)
            if contact_nodes.shape != (len(points),):
                raise ConfigError(f"contact_nodes must be a bool mask [{len(points)}], got {contact_nodes.shape}")
            self.contact_area_np = np.where(contact_nodes, self.contact_area_np, 0.0)
        self.obstacles = list(obstacles)
        for body in self.obstacles:
            if not isinstance(body, RigidBody):
                raise ConfigError(f"obstacles must be RigidBody instances, got {type(body).__name__}")
            body.check(d)

        arr, k = self._array, self.k
        self.mu = arr(self.mu_np)
        self.lam = arr(self.lam_np)
        # What the kernels read and no substep changes, as Warp structs (fem_kernels.py).
        self.elements = k.Elements()
        self.elements.cells = wp.array(self.cells, dtype=k.cell, device=self.device)
        self.elements.dm_inv = arr(self.dm_inv_np, k.mat)
        self.elements.volume = arr(vol)
        self.elements.material = MATERIAL_ID[material]
        self.nodes = k.Nodes()
        self.nodes.mass = arr(self.mass_np)
        self.nodes.free = arr(free, k.vec)
        self.nodes.prescribed_v = arr(np.zeros((len(points), d)) if prescribed_velocity is None
                                      else np.asarray(prescribed_velocity, float).reshape(len(points), d), k.vec)
        self.nodes.f_ext = arr(np.zeros((len(points), d)) if external_force is None
                               else np.asarray(external_force, float).reshape(len(points), d), k.vec)
        self.nodes.contact_area = arr(self.contact_area_np)
        b = self.obstacles
        self.bodies = k.Bodies()
        self.bodies.shape = wp.array(np.array([SHAPE_ID[o.shape] for o in b], np.int32).reshape(-1), dtype=wp.int32,
                                     device=self.device)
        self.bodies.params = arr(np.array([o.shape_params(d) for o in b]).reshape(-1, 4), k.vec4)
        self.bodies.contact = arr(np.array([o.contact_params() for o in b]).reshape(-1, 4), k.vec4)
        self.bodies.inv_mass = arr(np.array([0.0 if o.mass is None else 1.0 / o.mass for o in b]))
        self.bodies.inv_inertia = arr(np.array([o.inverse_inertia(d) for o in b]).reshape(-1, 3), k.vec3)
        # Contact between separate deformable bodies (connected components), e.g. dict(radius=, stiffness=).
        self.between_bodies = None
        if body_contact:
            from meshsim.physics.contact import BodyContact

            self.between_bodies = BodyContact(self, **body_contact)
        # Cumulative work of external loads, prescribed motion and kinematic bodies (reset by simulate()).
        self.work = wp.zeros(1, dtype=self.scalar, device=self.device)
        self.initial_velocity = np.zeros((len(points), d)) if velocity is None else np.broadcast_to(
            np.asarray(velocity, float), (len(points), d)).copy()
        self._stable = self._stable_dt()

    # -- set-up helpers --------------------------------------------------------------------------------------
    def _array(self, values, dtype=None, requires_grad=False):
        return wp.array(np.asarray(values, dtype=self.np_dtype), dtype=dtype or self.scalar, device=self.device,
                        requires_grad=requires_grad)

    def _stable_dt(self) -> tuple[float, str]:
        """(dt, what limits it): CFL of the stiffest element, penalty springs, both reduced for damping."""
        d = self.dim
        if d == 2:
            edges = [self.points[self.cells[:, a]] - self.points[self.cells[:, b]] for a, b in ((0, 1), (1, 2), (2, 0))]
            longest = np.max([np.linalg.norm(e, axis=1) for e in edges], axis=0)
            area = np.abs(np.linalg.det(np.linalg.inv(self.dm_inv_np))) / 2
            h = 2 * area / longest  # smallest altitude
        else:
            p = self.points[self.cells]
            faces = [(1, 2, 3), (0, 2, 3), (0, 1, 3), (0, 1, 2)]
            face_area = np.max([0.5 * np.linalg.norm(np.cross(p[:, b] - p[:, a], p[:, c] - p[:, a]), axis=1)
                                for a, b, c in faces], axis=0)
            h = 3 * self.volume_np / face_area
        c = np.sqrt((self.lam_np + 2 * self.mu_np) / self.density_np)
        omega = 2 * c / h
        zeta = self.stiffness_damping * omega / 2
        dt_el = 2 / omega * (np.sqrt(1 + zeta**2) - zeta)
        self._dt_element = dt_el  # critical step of each undeformed element (checked again as it deforms)
        e = int(np.argmin(dt_el))
        dt, what = float(dt_el[e]), f"element {e}"
        touching = self.contact_area_np > 0  # penalty spring of node i: stiffness * area_i against its mass
        m_per_area = (self.mass_np[touching] / self.contact_area_np[touching]).min() if touching.any() else np.inf
        for i, body in enumerate(self.obstacles):
            zc = body.damping
            dt_c = 2 * math.sqrt(m_per_area / body.stiffness) * (math.sqrt(1 + zc**2) - zc)
            if dt_c < dt:
                dt, what = dt_c, f"contact stiffness of obstacle {i}"
        if self.between_bodies is not None and self.between_bodies.stable_dt() < dt:
            dt, what = self.between_bodies.stable_dt(), "the stiffness of contact between bodies"
        return self.cfl * dt, what

    @property
    def stable_dt(self) -> float:
        return self._stable[0]

    def substeps_for(self, frame_dt: float, dt: float | None = None) -> tuple[int, float]:
        """Substeps per frame and the substep length (auto: the largest stable one that divides the frame)."""
        if dt is not None:
            if dt > self.stable_dt / self.cfl:
                raise SimulationError(f"substep dt={dt:.3g} s violates the CFL limit {self.stable_dt / self.cfl:.3g} s "
                                      f"set by {self._stable[1]}: use a smaller dt or leave it automatic")
            n = max(1, round(frame_dt / dt))
            return n, frame_dt / n
        n = max(1, math.ceil(frame_dt / self.stable_dt - 1e-9))
        return n, frame_dt / n

    # -- state ----------------------------------------------------------------------------------------------
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

    def scratch(self, requires_grad: bool = False) -> FemScratch:
        """Force accumulators of one substep (zeroed)."""
        z = lambda n, t: wp.zeros(n, dtype=t, device=self.device, requires_grad=requires_grad)  # noqa: E731
        nb = len(self.obstacles)
        return FemScratch(f=z(len(self.points), self.k.vec), body_force=z(nb, self.k.vec3),
                          body_torque=z(nb, self.k.vec3), body_contact=z(len(self.points), self.k.vec))

    def _body_state(self, state: FemState):
        """The rigid-body arrays of `state` as the kernels' BodyState struct (the same arrays, no copy)."""
        body = self.k.BodyState()
        body.pos, body.rot, body.vel, body.omega = state.body_pos, state.body_rot, state.body_vel, state.body_omega
        return body

    def step(self, s_in, s_out, scratch, dt: float, record: bool = False, mu=None, lam=None):
        """One substep s_in -> s_out. `scratch` must be zeroed (a fresh one per step under a wp.Tape).
        `mu`, `lam`: per-element Lame arrays replacing the solver's (the bridge differentiates through them)."""
        k, S = self.k, self.scalar
        mu = self.mu if mu is None else mu
        lam = self.lam if lam is None else lam
        cmds = [
            wp.launch(k.element_forces, dim=len(self.cells), device=self.device, record_cmd=record, inputs=[
                s_in.x, s_in.v, self.elements, mu, lam, S(self.stiffness_damping), scratch.f])]
        if self.between_bodies is not None:
            cmds += self.between_bodies.launches(s_in, s_out, scratch, record)
        gravity = k.vec(*self.gravity)
        body_in, body_out = self._body_state(s_in), self._body_state(s_out)
        forces = k.Forces()
        forces.f, forces.body_force = scratch.f, scratch.body_force
        forces.body_torque, forces.between_bodies = scratch.body_torque, scratch.body_contact
        cmds.append(wp.launch(k.integrate_nodes, dim=len(self.points), device=self.device, record_cmd=record, inputs=[
            s_in.x, s_in.v, self.nodes, self.bodies, gravity, S(self.mass_damping), S(dt), body_in, forces,
            self.work, s_out.x, s_out.v, s_out.contact]))
        if self.obstacles:
            cmds.append(wp.launch(k.integrate_bodies, dim=len(self.obstacles), device=self.device, record_cmd=record,
                                  inputs=[self.bodies, gravity, S(dt), body_in, forces, body_out, self.work]))
        return cmds

    # -- diagnostics ----------------------------------------------------------------------------------------
    def diagnostics(self, state) -> dict:
        """Per-frame outputs of a state: nodal von Mises stress, J and energies (host arrays)."""
        m, n = len(self.cells), len(self.points)
        z = lambda size: wp.zeros(size, dtype=self.scalar, device=self.device)  # noqa: E731
        out = self.k.Diagnostics()
        out.det, out.energy, out.von_mises, out.node_stress, out.node_weight = z(m), z(m), z(m), z(n), z(n)
        contact_e = z(1)
        wp.launch(self.k.diagnostics, dim=m, device=self.device, inputs=[
            state.x, self.elements, self.mu, self.lam, self.plane_stress, out])
        if self.obstacles:
            wp.launch(self.k.contact_energy, dim=n, device=self.device, inputs=[
                state.x, self.nodes, self.bodies, self._body_state(state), contact_e])
        x, v = state.x.numpy().astype(np.float64), state.v.numpy().astype(np.float64)
        w = out.node_weight.numpy()
        kinetic = 0.5 * float(np.sum(self.mass_np[:, None] * v * v))
        potential = -float(np.sum(self.mass_np[:, None] * x * self.gravity))
        bv = state.body_vel.numpy().astype(np.float64)
        bw = state.body_omega.numpy().astype(np.float64)
        bq = state.body_rot.numpy().astype(np.float64)
        bp = state.body_pos.numpy().astype(np.float64)
        for i, body in enumerate(self.obstacles):
            if body.mass is not None:
                w_body = quat_to_matrix(bq[i]).T @ bw[i]
                inertia = np.where(body.inverse_inertia(self.dim) > 0, 1 / body.inverse_inertia(self.dim), 0)
                kinetic += 0.5 * body.mass * float(bv[i] @ bv[i]) + 0.5 * float(w_body @ (inertia * w_body))
                potential -= body.mass * float(bp[i] @ self.gravity)
        strain = float(out.energy.numpy().sum())
        contact = float(contact_e.numpy()[0])
        if self.between_bodies is not None:
            contact += self.between_bodies.energy(x)
        return {
            "x": x, "v": v, "det": out.det.numpy(), "stress": out.node_stress.numpy() / np.where(w > 0, w, 1),
            "contact_force": state.contact.numpy().copy(), "body_pos": bp, "body_rot": bq, "body_vel": bv,
            "energies": {"kinetic_energy": kinetic, "strain_energy": strain, "contact_energy": contact,
                         "gravity_energy": potential, "total_energy": kinetic + strain + contact + potential,
                         "external_work": float(self.work.numpy()[0])},
        }

    def check(self, diag: dict, step: int, dt: float | None = None) -> None:
        """Raise SimulationError on NaN positions, inverted elements or (given the substep `dt`) an element
        compressed so much that its critical step, which shrinks with its size ~ J^(1/d), fell below dt."""
        bad = ~np.isfinite(diag["x"]).all(axis=1)
        if bad.any():
            raise SimulationError(f"node {int(np.argmax(bad))} has a non-finite position by step {step}: the run "
                                  "blew up; lower cfl, the obstacle stiffness or the impact speed")
        if np.any(diag["det"] <= 0) or not np.isfinite(diag["det"]).all():
            e = int(np.argmin(np.nan_to_num(diag["det"], nan=-np.inf)))
            raise SimulationError(f"element {e} inverted (J={diag['det'][e]:.3g}) by step {step}: lower cfl or "
                                  "the load, refine the mesh or stiffen the material")
        if dt is not None:
            ratio = dt / (self._dt_element * diag["det"] ** (1.0 / self.dim))
            e = int(np.argmax(ratio))
            if ratio[e] > 1.0:
                raise SimulationError(f"CFL limit violated at element {e} by step {step}: compressed to "
                                      f"J={diag['det'][e]:.3g}, its critical step is now below dt={dt:.3g} s; "
                                      "lower cfl or the load")

    # -- driver ---------------------------------------------------------------------------------------------
    def simulate(self, num_frames: int, frame_dt: float, dt: float | None = None, controller=None,
                 check: bool = True) -> FemResult:
        """Run `num_frames - 1` frame intervals from the initial state; frame 0 is the initial state.

        `controller(frame, time, state)` may change prescribed / kinematic velocities between frames."""
        if num_frames < 1 or not frame_dt > 0:
            raise ConfigError(f"need num_frames >= 1 and frame_dt > 0, got {num_frames}, {frame_dt}")
        substeps, h = self.substeps_for(frame_dt, dt)
        self.work.zero_()
        states = [self.state(), self.state()]
        scratch = self.scratch()
        # Two recorded launch sequences (a -> b and b -> a) avoid re-packing arguments every substep.
        cmds = [self.step(states[0], states[1], scratch, h, record=True),
                self.step(states[1], states[0], scratch, h, record=True)]
        frames = []
        cur = 0
        for frame in range(num_frames):
            if frame > 0:
                if controller is not None:
                    controller(frame, (frame - 1) * frame_dt, states[cur])
                for _ in range(substeps):
                    scratch.f.zero_()
                    scratch.body_force.zero_()
                    scratch.body_torque.zero_()
                    scratch.body_contact.zero_()
                    for c in cmds[cur]:
                        c.launch()
                    cur = 1 - cur
            diag = self.diagnostics(states[cur])
            if check:
                self.check(diag, frame * substeps, h)
            frames.append(diag)
        return collect_frames(frames, self.obstacles, self.dim, h, substeps)
