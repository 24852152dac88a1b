"""Warp kernels of one explicit FEM substep: element forces, node contact + integration, rigid-body update.

A substep is three launches (after zeroing the force accumulators):

1. `element_forces`  one thread per simplex: F = Ds Dm^-1, P(F) + Rayleigh stiffness damping, scatter -V P Dm^-T.
2. `integrate_nodes` one thread per node: penalty contact with every rigid obstacle (a penalty pressure on the
                     node's share of the boundary area, regularised Coulomb friction, equal and opposite
                     reaction on the body), then symplectic Euler with mass damping,
                     per-component constraints and prescribed velocities.
3. `integrate_bodies` one thread per rigid body: free bodies integrate force and torque; kinematic ones move with
                     their prescribed velocities.

Kernels are generated per (dimension, scalar type) and grouped into one Warp module per pair, so float32
datasets never compile the float64 variants used by gradient tests. Rigid bodies always use 3D rotations
(quaternions, angular velocity as a 3-vector); a 2D body rotates about z.
"""


import functools
from types import SimpleNamespace

import warp as wp

from meshsim.physics.hyperelastic import make_laws

SHAPES = ("plane", "sphere", "box", "capsule")
SHAPE_ID = {name: i for i, name in enumerate(SHAPES)}


@functools.cache
def make_kernels(dim: int, scalar) -> SimpleNamespace:
    piola, energy, von_mises, _ = make_laws(dim, scalar)
    V = wp.types.vector(length=dim, dtype=scalar)
    M = wp.types.matrix(shape=(dim, dim), dtype=scalar)
    V3 = wp.types.vector(length=3, dtype=scalar)
    Q = wp.types.quaternion(dtype=scalar)
    V4 = wp.types.vector(length=4, dtype=scalar)
    Cell = wp.types.vector(length=dim + 1, dtype=wp.int32)
    zero = scalar(0.0)
    one = scalar(1.0)
    module = f"meshsim_fem{dim}d_{scalar.__name__}"

    # Kernel arguments that a run never changes, grouped (FemModel builds one of each); what a substep reads and
    # writes (positions, velocities, rigid-body states, the Lame arrays the bridge differentiates) stays separate.
    @wp.struct
    class Elements:
        cells: wp.array(dtype=Cell)
        dm_inv: wp.array(dtype=M)  # Dm^-1 of the reference simplex
        volume: wp.array(dtype=scalar)  # rest volume (area x thickness in 2D)
        material: int  # hyperelastic.MATERIAL_ID

    @wp.struct
    class Nodes:
        mass: wp.array(dtype=scalar)  # lumped
        free: wp.array(dtype=V)  # 1 per free component, 0 per constrained one
        prescribed_v: wp.array(dtype=V)  # velocity of the constrained components
        f_ext: wp.array(dtype=V)  # constant external load
        contact_area: wp.array(dtype=scalar)  # share of the boundary area; 0: never touches an obstacle

    @wp.struct
    class Bodies:
        shape: wp.array(dtype=wp.int32)  # SHAPE_ID
        params: wp.array(dtype=V4)  # shape parameters (obstacles.py)
        contact: wp.array(dtype=V4)  # pressure stiffness, friction coefficient, damping ratio, slip velocity
        inv_mass: wp.array(dtype=scalar)  # 0: kinematic
        inv_inertia: wp.array(dtype=V3)  # body frame

    @wp.struct
    class Forces:  # accumulators of one substep (a FemForces), zeroed before it
        f: wp.array(dtype=V)  # internal + damping forces on the nodes
        body_force: wp.array(dtype=V3)  # contact force on each rigid body
        body_torque: wp.array(dtype=V3)
        between_bodies: wp.array(dtype=V)  # node-node contact between deformable bodies (contact.py)

    @wp.struct
    class Diagnostics:  # what `diagnostics` writes: per element, then volume-weighted sums per node
        det: wp.array(dtype=scalar)
        energy: wp.array(dtype=scalar)
        von_mises: wp.array(dtype=scalar)
        node_stress: wp.array(dtype=scalar)
        node_weight: wp.array(dtype=scalar)

    @wp.struct
    class BodyState:  # the rigid bodies' part of a FemState (differentiable: the bridge tapes through it)
        pos: wp.array(dtype=V)
        rot: wp.array(dtype=Q)
        vel: wp.array(dtype=V)
        omega: wp.array(dtype=V3)

    @wp.func
    def to3(p: V) -> V3:
        if wp.static(dim == 2):
            return V3(p[0], p[1], zero)
        else:
            return V3(p[0], p[1], p[2])

    @wp.func
    def from3(p: V3) -> V:
        if wp.static(dim == 2):
            return V(p[0], p[1])
        else:
            return V(p[0], p[1], p[2])

    @wp.func
    def cell_gradient(x: wp.array(dtype=V), c: Cell, dinv: M) -> M:
        """Ds Dm^-1 of simplex c (Ds: columns x_k - x_0): F for positions, its rate for velocities."""
        if wp.static(dim == 2):
            return wp.matrix_from_cols(x[c[1]] - x[c[0]], x[c[2]] - x[c[0]]) * dinv
        else:
            return wp.matrix_from_cols(x[c[1]] - x[c[0]], x[c[2]] - x[c[0]], x[c[3]] - x[c[0]]) * dinv

    @wp.func
    def sdf(shape: int, params: V4, p: V3):
        """Signed distance and outward unit normal of a shape in its body frame (params: see obstacles.py)."""
        if shape == 0:  # plane through the body origin with normal params[0:3]
            n = V3(params[0], params[1], params[2])
            return wp.dot(p, n), n
        if shape == 1:  # sphere / disk of radius params[0]
            r = wp.length(p)
            n = V3(zero, one, zero)
            if r > scalar(1.0e-12):
                n = p / r
            return r - params[0], n
        if shape == 2:  # box with half extents params[0:3]
            q = V3(wp.abs(p[0]) - params[0], wp.abs(p[1]) - params[1], wp.abs(p[2]) - params[2])
            outside = V3(wp.max(q[0], zero), wp.max(q[1], zero), wp.max(q[2], zero))
            d_out = wp.length(outside)
            if d_out > zero:
                n = V3(wp.sign(p[0]) * outside[0], wp.sign(p[1]) * outside[1], wp.sign(p[2]) * outside[2])
                return d_out, n / d_out
            k = 0
            if q[1] > q[k]:
                k = 1
            if q[2] > q[k]:
                k = 2
            n = V3(zero, zero, wp.sign(p[2]))
            if k == 0:
                n = V3(wp.sign(p[0]), zero, zero)
            elif k == 1:
                n = V3(zero, wp.sign(p[1]), zero)
            return q[k], n
        # capsule: radius params[0] around the segment |x| <= params[1] of the body x axis
        c = V3(wp.clamp(p[0], -params[1], params[1]), zero, zero)
        d = p - c
        r = wp.length(d)
        n = V3(zero, one, zero)
        if r > scalar(1.0e-12):
            n = d / r
        return r - params[0], n

    @wp.func
    def body_distance(p: V3, shape: int, params: V4, pos: V, rot: Q):
        """Signed distance of world point p to a body, the outward unit normal (world frame) and p - body origin."""
        r = p - to3(pos)
        phi, n = sdf(shape, params, wp.quat_rotate_inv(rot, r))
        return phi, wp.quat_rotate(rot, n), r

    @wp.kernel(module=module)
    def element_forces(
        x: wp.array(dtype=V),
        v: wp.array(dtype=V),
        elements: Elements,
        mu: wp.array(dtype=scalar),
        lam: wp.array(dtype=scalar),
        stiffness_damping: scalar,
        f: wp.array(dtype=V),
    ):
        e = wp.tid()
        c = elements.cells[e]
        Dinv = elements.dm_inv[e]
        F = cell_gradient(x, c, Dinv)
        P = piola(F, mu[e], lam[e], elements.material)
        if stiffness_damping > zero:
            # Rayleigh stiffness damping on the rate of Green strain: invariant under rigid rotation.
            Fdot = cell_gradient(v, c, Dinv)
            Edot = scalar(0.5) * (wp.transpose(F) * Fdot + wp.transpose(Fdot) * F)
            I = wp.identity(n=dim, dtype=scalar)
            P = P + stiffness_damping * F * (scalar(2.0) * mu[e] * Edot + lam[e] * wp.trace(Edot) * I)
        # Rows of H^T are the forces on nodes 1..d (node 0 takes minus their sum).
        Ht = -elements.volume[e] * Dinv * wp.transpose(P)
        f1 = Ht[0]
        f2 = Ht[1]
        f3 = V()
        if wp.static(dim == 3):
            f3 = Ht[2]
        wp.atomic_add(f, c[1], f1)
        wp.atomic_add(f, c[2], f2)
        if wp.static(dim == 3):
            wp.atomic_add(f, c[3], f3)
        wp.atomic_add(f, c[0], -(f1 + f2 + f3))

    @wp.kernel(module=module)
    def integrate_nodes(
        x: wp.array(dtype=V),
        v: wp.array(dtype=V),
        nodes: Nodes,
        bodies: Bodies,
        gravity: V,
        mass_damping: scalar,
        dt: scalar,
        body: BodyState,
        forces: Forces,
        work: wp.array(dtype=scalar),
        x_out: wp.array(dtype=V),
        v_out: wp.array(dtype=V),
        contact_out: wp.array(dtype=V),
    ):
        i = wp.tid()
        xi = x[i]
        vi = v[i]
        m = nodes.mass[i]
        fc = V3()
        area = nodes.contact_area[i]
        if area > zero:
            x3 = to3(xi)
            v3 = to3(vi)
            for b in range(bodies.shape.shape[0]):
                phi, n, r = body_distance(x3, bodies.shape[b], bodies.params[b], body.pos[b], body.rot[b])
                if phi < zero:
                    cp = bodies.contact[b]  # pressure stiffness, friction coefficient, damping ratio, slip velocity
                    k = cp[0] * area  # this node's penalty spring: pressure per penetration times its area
                    vrel = v3 - (to3(body.vel[b]) + wp.cross(body.omega[b], r))
                    v_normal = wp.dot(vrel, n)
                    fn = k * (-phi) - scalar(2.0) * cp[2] * wp.sqrt(k * m) * v_normal
                    fn = wp.max(fn, zero)
                    vt = vrel - v_normal * n
                    ft = -(cp[1] * fn / wp.sqrt(wp.dot(vt, vt) + cp[3] * cp[3])) * vt
                    fb = fn * n + ft
                    fc = fc + fb
                    wp.atomic_sub(forces.body_force, b, fb)
                    wp.atomic_sub(forces.body_torque, b, wp.cross(r, fb))
        contact_out[i] = from3(fc) + forces.between_bodies[i]  # already part of f; reported with the rest
        vn = vi
        f_ext = nodes.f_ext[i]
        if m > zero:
            vn = vi + dt * ((forces.f[i] + f_ext + from3(fc)) / m + gravity)
        vn = vn / (one + dt * mass_damping)
        w = nodes.free[i]
        v_free = vn
        vp = nodes.prescribed_v[i]
        vn = wp.cw_mul(w, vn) + vp - wp.cw_mul(w, vp)
        # Work done on the body by external loads and by the constraint impulses of prescribed motion.
        power = dt * wp.dot(f_ext, vn) + m * wp.dot(vn - v_free, vn)
        if power != zero:
            wp.atomic_add(work, 0, power)
        v_out[i] = vn
        x_out[i] = xi + dt * vn

    @wp.kernel(module=module)
    def integrate_bodies(
        bodies: Bodies,
        gravity: V,
        dt: scalar,
        state: BodyState,
        forces: Forces,
        state_out: BodyState,
        work: wp.array(dtype=scalar),
    ):
        b = wp.tid()
        q = state.rot[b]
        vb = state.vel[b]
        w = state.omega[b]
        inv_mass = bodies.inv_mass[b]
        if inv_mass > zero:  # free body; kinematic bodies keep their prescribed velocities
            vb = vb + dt * (from3(forces.body_force[b]) * inv_mass + gravity)
            t_body = wp.quat_rotate_inv(q, forces.body_torque[b])
            ii = bodies.inv_inertia[b]
            dw = V3(ii[0] * t_body[0], ii[1] * t_body[1], ii[2] * t_body[2])
            w = w + dt * wp.quat_rotate(q, dw)
            if wp.static(dim == 2):
                w = V3(zero, zero, w[2])
        else:  # a kinematic body does work on the nodes it pushes: -(F . v + tau . omega) of its reaction
            wp.atomic_add(work, 0, -dt * (wp.dot(forces.body_force[b], to3(vb)) + wp.dot(forces.body_torque[b], w)))
        state_out.vel[b] = vb
        state_out.omega[b] = w
        state_out.pos[b] = state.pos[b] + dt * vb
        dq = Q(w[0], w[1], w[2], zero) * q
        state_out.rot[b] = wp.normalize(q + scalar(0.5) * dt * dq)

    @wp.kernel(module=module)
    def diagnostics(
        x: wp.array(dtype=V),
        elements: Elements,
        mu: wp.array(dtype=scalar),
        lam: wp.array(dtype=scalar),
        plane_stress: int,
        out: Diagnostics,
    ):
        """Per element J, strain energy and von Mises stress; volume-weighted sums onto nodes."""
        e = wp.tid()
        c = elements.cells[e]
        vol = elements.volume[e]
        F = cell_gradient(x, c, elements.dm_inv[e])
        P = piola(F, mu[e], lam[e], elements.material)
        out.det[e] = wp.determinant(F)
        out.energy[e] = vol * energy(F, mu[e], lam[e], elements.material)
        s = von_mises(F, P, mu[e], lam[e], plane_stress)
        out.von_mises[e] = s
        for k in range(dim + 1):
            wp.atomic_add(out.node_stress, c[k], vol * s)
            wp.atomic_add(out.node_weight, c[k], vol)

    @wp.kernel(module=module)
    def contact_energy(
        x: wp.array(dtype=V),
        nodes: Nodes,
        bodies: Bodies,
        body: BodyState,
        out: wp.array(dtype=scalar),
    ):
        i = wp.tid()
        area = nodes.contact_area[i]
        if area == zero:
            return
        for b in range(bodies.shape.shape[0]):
            phi, n, r = body_distance(to3(x[i]), bodies.shape[b], bodies.params[b], body.pos[b], body.rot[b])
            if phi < zero:
                wp.atomic_add(out, 0, scalar(0.5) * bodies.contact[b][0] * area * phi * phi)

    return SimpleNamespace(
        element_forces=element_forces, integrate_nodes=integrate_nodes, integrate_bodies=integrate_bodies,
        diagnostics=diagnostics, contact_energy=contact_energy, Elements=Elements, Nodes=Nodes, Bodies=Bodies,
        BodyState=BodyState, Forces=Forces, Diagnostics=Diagnostics,
        vec=V, mat=M, vec3=V3, quat=Q, vec4=V4, cell=Cell, scalar=scalar,
    )
