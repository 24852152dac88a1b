"""Warp kernels of one explicit FEM substep: element forces, node contact + integration, rigid-body update.

A substep is three launches (after zeroing the force accumulators):

1. `element_forces`  one thread per simplex: F = Ds Dm^-1, P(F) + Rayleigh stiffness damping, scatter -V P Dm^-T.
2. `nodes`           one thread per node: penalty contact with every rigid obstacle (a penalty pressure on the
                     node's share of the boundary area, regularised Coulomb friction, equal and opposite
                     reaction on the body), then symplectic Euler with mass damping,
                     per-component constraints and prescribed velocities.
3. `bodies`          one thread per rigid body: free bodies integrate force and torque; kinematic ones move with
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
        cells: wp.array(dtype=Cell),
        dm_inv: wp.array(dtype=M),
        volume: wp.array(dtype=scalar),
        mu: wp.array(dtype=scalar),
        lam: wp.array(dtype=scalar),
        material: int,
        stiffness_damping: scalar,
        f: wp.array(dtype=V),
    ):
        e = wp.tid()
        c = cells[e]
        Dinv = dm_inv[e]
        F = cell_gradient(x, c, Dinv)
        P = piola(F, mu[e], lam[e], material)
        if stiffness_damping > zero:
            # Rayleigh stiffness damping on the rate of Green strain: invariant under rigid rotation.
            Fdot = cell_gradient(v, c, Dinv)
            Edot = scalar(0.5) * (wp.transpose(F) * Fdot + wp.transpose(Fdot) * F)
            I = wp.identity(n=dim, dtype=scalar)
            P = P + stiffness_damping * F * (scalar(2.0) * mu[e] * Edot + lam[e] * wp.trace(Edot) * I)
        # Rows of H^T are the forces on nodes 1..d (node 0 takes minus their sum).
        Ht = -volume[e] * Dinv * wp.transpose(P)
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
    def nodes(
        x: wp.array(dtype=V),
        v: wp.array(dtype=V),
        f: wp.array(dtype=V),
        f_ext: wp.array(dtype=V),
        mass: wp.array(dtype=scalar),
        free: wp.array(dtype=V),
        prescribed_v: wp.array(dtype=V),
        contact_area: wp.array(dtype=scalar),
        gravity: V,
        mass_damping: scalar,
        dt: scalar,
        body_shape: wp.array(dtype=wp.int32),
        body_params: wp.array(dtype=V4),
        body_contact: wp.array(dtype=V4),
        body_pos: wp.array(dtype=V),
        body_rot: wp.array(dtype=Q),
        body_vel: wp.array(dtype=V),
        body_omega: wp.array(dtype=V3),
        body_force: wp.array(dtype=V3),
        body_torque: wp.array(dtype=V3),
        f_between_bodies: wp.array(dtype=V),
        work: wp.array(dtype=scalar),
        x_out: wp.array(dtype=V),
        v_out: wp.array(dtype=V),
        contact_out: wp.array(dtype=V),
    ):
        i = wp.tid()
        xi = x[i]
        vi = v[i]
        m = mass[i]
        fc = V3()
        area = contact_area[i]
        if area > zero:
            x3 = to3(xi)
            v3 = to3(vi)
            for b in range(body_shape.shape[0]):
                phi, n, r = body_distance(x3, body_shape[b], body_params[b], body_pos[b], body_rot[b])
                if phi < zero:
                    cp = body_contact[b]  # pressure stiffness, friction coefficient, damping ratio, slip velocity
                    k = cp[0] * area  # this node's penalty spring: pressure per penetration times its area
                    vrel = v3 - (to3(body_vel[b]) + wp.cross(body_omega[b], r))
                    v_normal = wp.dot(vrel, n)
                    fn = k * (-phi) - scalar(2.0) * cp[2] * wp.sqrt(k * m) * v_normal
                    fn = wp.max(fn, zero)
                    vt = vrel - v_normal * n
                    ft = -(cp[1] * fn / wp.sqrt(wp.dot(vt, vt) + cp[3] * cp[3])) * vt
                    fb = fn * n + ft
                    fc = fc + fb
                    wp.atomic_sub(body_force, b, fb)
                    wp.atomic_sub(body_torque, b, wp.cross(r, fb))
        contact_out[i] = from3(fc) + f_between_bodies[i]  # already part of f; reported with the rest
        vn = vi
        if m > zero:
            vn = vi + dt * ((f[i] + f_ext[i] + from3(fc)) / m + gravity)
        vn = vn / (one + dt * mass_damping)
        w = free[i]
        v_free = vn
        vn = wp.cw_mul(w, vn) + prescribed_v[i] - wp.cw_mul(w, prescribed_v[i])
        # Work done on the body by external loads and by the constraint impulses of prescribed motion.
        power = dt * wp.dot(f_ext[i], vn) + m * wp.dot(vn - v_free, vn)
        if power != zero:
            wp.atomic_add(work, 0, power)
        v_out[i] = vn
        x_out[i] = xi + dt * vn

    @wp.kernel(module=module)
    def bodies(
        inv_mass: wp.array(dtype=scalar),
        inv_inertia: wp.array(dtype=V3),
        gravity: V,
        dt: scalar,
        pos: wp.array(dtype=V),
        rot: wp.array(dtype=Q),
        vel: wp.array(dtype=V),
        omega: wp.array(dtype=V3),
        force: wp.array(dtype=V3),
        torque: wp.array(dtype=V3),
        pos_out: wp.array(dtype=V),
        rot_out: wp.array(dtype=Q),
        vel_out: wp.array(dtype=V),
        omega_out: wp.array(dtype=V3),
        work: wp.array(dtype=scalar),
    ):
        b = wp.tid()
        q = rot[b]
        vb = vel[b]
        w = omega[b]
        if inv_mass[b] > zero:  # free body; kinematic bodies keep their prescribed velocities
            vb = vb + dt * (from3(force[b]) * inv_mass[b] + gravity)
            t_body = wp.quat_rotate_inv(q, torque[b])
            ii = inv_inertia[b]
            dw = V3(ii[0] * t_body[0], ii[1] * t_body[1], ii[2] * t_body[2])
            w = w + dt * wp.quat_rotate(q, dw)
            if wp.static(dim == 2):
                w = V3(zero, zero, w[2])
        else:  # a kinematic body does work on the nodes it pushes: -(F . v + tau . omega) of its reaction
            wp.atomic_add(work, 0, -dt * (wp.dot(force[b], to3(vb)) + wp.dot(torque[b], w)))
        vel_out[b] = vb
        omega_out[b] = w
        pos_out[b] = pos[b] + dt * vb
        dq = Q(w[0], w[1], w[2], zero) * q
        rot_out[b] = wp.normalize(q + scalar(0.5) * dt * dq)

    @wp.kernel(module=module)
    def diagnostics(
        x: wp.array(dtype=V),
        cells: wp.array(dtype=Cell),
        dm_inv: wp.array(dtype=M),
        volume: wp.array(dtype=scalar),
        mu: wp.array(dtype=scalar),
        lam: wp.array(dtype=scalar),
        material: int,
        plane_stress: int,
        det_out: wp.array(dtype=scalar),
        energy_out: wp.array(dtype=scalar),
        von_mises_out: wp.array(dtype=scalar),
        node_stress: wp.array(dtype=scalar),
        node_weight: wp.array(dtype=scalar),
    ):
        """Per element J, strain energy and von Mises stress; volume-weighted sums onto nodes."""
        e = wp.tid()
        c = cells[e]
        F = cell_gradient(x, c, dm_inv[e])
        P = piola(F, mu[e], lam[e], material)
        det_out[e] = wp.determinant(F)
        energy_out[e] = volume[e] * energy(F, mu[e], lam[e], material)
        s = von_mises(F, P, mu[e], lam[e], plane_stress)
        von_mises_out[e] = s
        for k in range(dim + 1):
            wp.atomic_add(node_stress, c[k], volume[e] * s)
            wp.atomic_add(node_weight, c[k], volume[e])

    @wp.kernel(module=module)
    def contact_energy(
        x: wp.array(dtype=V),
        contact_area: wp.array(dtype=scalar),
        body_shape: wp.array(dtype=wp.int32),
        body_params: wp.array(dtype=V4),
        body_contact: wp.array(dtype=V4),
        body_pos: wp.array(dtype=V),
        body_rot: wp.array(dtype=Q),
        out: wp.array(dtype=scalar),
    ):
        i = wp.tid()
        if contact_area[i] == zero:
            return
        for b in range(body_shape.shape[0]):
            phi, n, r = body_distance(to3(x[i]), body_shape[b], body_params[b], body_pos[b], body_rot[b])
            if phi < zero:
                wp.atomic_add(out, 0, scalar(0.5) * body_contact[b][0] * contact_area[i] * phi * phi)

    return SimpleNamespace(
        element_forces=element_forces, nodes=nodes, bodies=bodies, diagnostics=diagnostics,
        contact_energy=contact_energy, vec=V, mat=M, vec3=V3, quat=Q, vec4=V4, cell=Cell, scalar=scalar,
    )
