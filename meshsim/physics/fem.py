"""Explicit FEM for linear triangles (2D plane strain / plane stress) and linear tetrahedra (3D), in Warp.

    model = FemModel.build(points, cells, density=1000.0, youngs_modulus=1e6, poisson_ratio=0.3,
                           material="neohookean", obstacles=[RigidBody("plane", (0, 0), normal=(0, 1))],
                           gravity=(0, -9.81), fixed=fixed_mask)             # fem_model.py: built once, frozen
    solver = FemSolver(model)
    result = solver.simulate(num_frames=50, frame_dt=1e-3)   # FemResult: positions, stress, energies, ...
    # or substep by substep, as Newton's solvers do:
    solver.step(state_in, state_out, model.control(), model.forces(), dt)

Lumped mass, symplectic Euler (velocity first, then position with the new velocity), optional Rayleigh damping
(mass-proportional `mass_damping` [1/s], stiffness-proportional `stiffness_damping` [s]). The substep is chosen
from the CFL limit of the stiffest element, the penalty springs and the damping (`FemModel.stable_dt`). The
solver holds what stepping needs beyond the model: the cumulative work of external loads, prescribed motion and
kinematic bodies, and the neighbour-search grid of contact between bodies.
"""

from __future__ import annotations

import math

import numpy as np
import warp as wp

from meshsim.errors import ConfigError, SimulationError
from meshsim.physics.fem_model import FemModel
from meshsim.physics.fem_state import FemControl, FemForces, FemResult, FemState, collect_frames
from meshsim.physics.obstacles import quat_to_matrix


class FemSolver:
    def __init__(self, model: FemModel):
        if not isinstance(model, FemModel):
            raise ConfigError(f"FemSolver needs a FemModel (FemModel.build(points, cells, ...)), got "
                              f"{type(model).__name__}")
        self.model = model
        # Cumulative work of external loads, prescribed motion and kinematic bodies (reset by simulate()).
        self.work = wp.zeros(1, dtype=model.scalar, device=model.device)
        self.grid = None if model.body_contact is None else model.body_contact.search_grid()

    def substeps_for(self, frame_dt: float, dt: float | None = None) -> tuple[int, float]:
        """Substeps per frame and the substep length (auto: the largest stable one that divides the frame)."""
        stable_dt, cfl = self.model.stable_dt, self.model.cfl
        if dt is not None:
            if dt > stable_dt / cfl:
                raise SimulationError(f"substep dt={dt:.3g} s violates the CFL limit {stable_dt / cfl:.3g} s "
                                      f"set by {self.model.stable[1]}: use a smaller dt or leave it automatic")
            n = max(1, round(frame_dt / dt))
            return n, frame_dt / n
        n = max(1, math.ceil(frame_dt / stable_dt - 1e-9))
        return n, frame_dt / n

    def _body_state(self, state: FemState):
        """The rigid-body arrays of `state` as the kernels' BodyState struct (the same arrays, no copy)."""
        body = self.model.k.BodyState()
        body.pos, body.rot, body.vel, body.omega = state.body_pos, state.body_rot, state.body_vel, state.body_omega
        return body

    def step(self, state_in: FemState, state_out: FemState, control: FemControl, forces: FemForces, dt: float,
             record: bool = False):
        """One substep state_in -> state_out. `forces` must be zeroed (a fresh one per step under a wp.Tape).
        With `record`, nothing runs: the launches come back as recorded commands to replay."""
        m = self.model
        k, S, dev = m.k, m.scalar, m.device
        cmds = [
            wp.launch(k.element_forces, dim=len(m.cells), device=dev, record_cmd=record, inputs=[
                state_in.x, state_in.v, m.elements, control.mu, control.lam, S(m.stiffness_damping), forces.f])]
        if m.body_contact is not None:
            cmds += m.body_contact.launches(state_in, forces, self.grid, record)
        gravity = k.vec(*m.gravity)
        body_in, body_out = self._body_state(state_in), self._body_state(state_out)
        acc = k.Forces()
        acc.f, acc.body_force = forces.f, forces.body_force
        acc.body_torque, acc.between_bodies = forces.body_torque, forces.between_bodies
        cmds.append(wp.launch(k.integrate_nodes, dim=len(m.points), device=dev, record_cmd=record, inputs=[
            state_in.x, state_in.v, m.nodes, m.bodies, gravity, S(m.mass_damping), S(dt), body_in, acc,
            self.work, state_out.x, state_out.v, state_out.contact]))
        if m.obstacles:
            cmds.append(wp.launch(k.integrate_bodies, dim=len(m.obstacles), device=dev, record_cmd=record,
                                  inputs=[m.bodies, gravity, S(dt), body_in, acc, body_out, self.work]))
        return cmds

    # -- diagnostics ----------------------------------------------------------------------------------------
    def diagnostics(self, state) -> dict:
        """Per-frame outputs of a state: nodal von Mises stress, J and energies (host arrays)."""
        model = self.model
        m, n = len(model.cells), len(model.points)
        z = lambda size: wp.zeros(size, dtype=model.scalar, device=model.device)  # noqa: E731
        out = model.k.Diagnostics()
        out.det, out.energy, out.von_mises, out.node_stress, out.node_weight = z(m), z(m), z(m), z(n), z(n)
        contact_e = z(1)
        wp.launch(model.k.diagnostics, dim=m, device=model.device, inputs=[
            state.x, model.elements, model.mu, model.lam, model.plane_stress, out])
        if model.obstacles:
            wp.launch(model.k.contact_energy, dim=n, device=model.device, inputs=[
                state.x, model.nodes, model.bodies, self._body_state(state), contact_e])
        x, v = state.x.numpy().astype(np.float64), state.v.numpy().astype(np.float64)
        w = out.node_weight.numpy()
        kinetic = 0.5 * float(np.sum(model.mass_np[:, None] * v * v))
        potential = -float(np.sum(model.mass_np[:, None] * x * model.gravity))
        bv = state.body_vel.numpy().astype(np.float64)
        bw = state.body_omega.numpy().astype(np.float64)
        bq = state.body_rot.numpy().astype(np.float64)
        bp = state.body_pos.numpy().astype(np.float64)
        for i, body in enumerate(model.obstacles):
            if body.mass is not None:
                w_body = quat_to_matrix(bq[i]).T @ bw[i]
                inertia = np.where(body.inverse_inertia(model.dim) > 0, 1 / body.inverse_inertia(model.dim), 0)
                kinetic += 0.5 * body.mass * float(bv[i] @ bv[i]) + 0.5 * float(w_body @ (inertia * w_body))
                potential -= body.mass * float(bp[i] @ model.gravity)
        strain = float(out.energy.numpy().sum())
        contact = float(contact_e.numpy()[0])
        if model.body_contact is not None:
            contact += model.body_contact.energy(x)
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
            ratio = dt / (self.model.dt_element * diag["det"] ** (1.0 / self.model.dim))
            e = int(np.argmax(ratio))
            if ratio[e] > 1.0:
                raise SimulationError(f"CFL limit violated at element {e} by step {step}: compressed to "
                                      f"J={diag['det'][e]:.3g}, its critical step is now below dt={dt:.3g} s; "
                                      "lower cfl or the load")

    # -- driver ---------------------------------------------------------------------------------------------
    def simulate(self, num_frames: int, frame_dt: float, dt: float | None = None, controller=None,
                 check: bool = True) -> FemResult:
        """Run `num_frames - 1` frame intervals from the initial state; frame 0 is the initial state.

        `controller(frame, time, state)` may change the state between frames, e.g. the velocity of a kinematic
        obstacle (`state.body_vel`); the model stays as built."""
        if num_frames < 1 or not frame_dt > 0:
            raise ConfigError(f"need num_frames >= 1 and frame_dt > 0, got {num_frames}, {frame_dt}")
        substeps, h = self.substeps_for(frame_dt, dt)
        self.work.zero_()
        model = self.model
        states = [model.state(), model.state()]
        control, forces = model.control(), model.forces()
        # Two recorded launch sequences (a -> b and b -> a) avoid re-packing arguments every substep.
        cmds = [self.step(states[0], states[1], control, forces, h, record=True),
                self.step(states[1], states[0], control, forces, h, record=True)]
        frames = []
        cur = 0
        for frame in range(num_frames):
            if frame > 0:
                if controller is not None:
                    controller(frame, (frame - 1) * frame_dt, states[cur])
                for _ in range(substeps):
                    forces.zero()
                    for c in cmds[cur]:
                        c.launch()
                    cur = 1 - cur
            diag = self.diagnostics(states[cur])
            if check:
                self.check(diag, frame * substeps, h)
            frames.append(diag)
        return collect_frames(frames, model.obstacles, model.dim, h, substeps)
