"""Contact between separate deformable bodies: symmetric node-node penalty found with a Warp hash grid.

Bodies are the connected components of the mesh. Each substep the boundary nodes are hashed into a
`wp.HashGrid` with cell size `radius`; every boundary node then looks at the boundary nodes of *other* bodies
within `radius` and is pushed away along the line between them:
`f_n = max(0, k (radius - r) - 2 zeta sqrt(k m_eff) v_n)`, plus regularised Coulomb friction. Node i computes
the force it receives from j and node j the one it receives from i, which is exactly the opposite, so momentum is
conserved without atomics between threads. `radius` is the contact thickness: choose it about the boundary node
spacing so that nodes cannot slip between the nodes of the other body. Not differentiated by the bridge (the
neighbour search is a while loop, which Warp's tape does not replay).
"""

import functools
from types import SimpleNamespace

import numpy as np
import warp as wp
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from meshsim.errors import ConfigError


def body_ids(num_nodes: int, cells: np.ndarray) -> np.ndarray:
    """Connected component of every node (nodes in no cell get their own id)."""
    k = cells.shape[1]
    rows = np.repeat(cells[:, 0], k - 1)
    cols = cells[:, 1:].ravel()
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(num_nodes, num_nodes))
    return connected_components(graph, directed=False)[1].astype(np.int32)


@functools.cache
def make_contact_kernels(dim: int, scalar):
    V = wp.types.vector(length=dim, dtype=scalar)
    V3 = wp.types.vector(length=3, dtype=scalar)
    zero = scalar(0.0)
    module = f"meshsim_fem_contact{dim}d_{scalar.__name__}"

    @wp.kernel(module=module)
    def to_points3(x: wp.array(dtype=V), out: wp.array(dtype=V3)):
        i = wp.tid()
        p = x[i]
        if wp.static(dim == 2):
            out[i] = V3(p[0], p[1], zero)
        else:
            out[i] = V3(p[0], p[1], p[2])

    @wp.struct
    class Law:
        """The penalty law: contact thickness, stiffness, damping ratio, Coulomb friction, slip velocity."""

        radius: scalar
        stiffness: scalar
        damping: scalar
        friction: scalar
        slip: scalar

    @wp.kernel(module=module)
    def node_node(
        grid: wp.uint64,
        p3: wp.array(dtype=V3),
        v: wp.array(dtype=V),
        body: wp.array(dtype=wp.int32),
        mask: wp.array(dtype=wp.int32),
        mass: wp.array(dtype=scalar),
        law: Law,
        f: wp.array(dtype=V),
        contact_out: wp.array(dtype=V),
    ):
        i = wp.tid()
        radius, stiffness, damping = law.radius, law.stiffness, law.damping
        if mask[i] == 0:
            return
        pi = p3[i]
        query = wp.hash_grid_query(grid, pi, radius)
        j = int(0)  # noqa: UP018 (Warp needs a mutable int variable here)
        while wp.hash_grid_query_next(query, j):
            if mask[j] != 0 and body[j] != body[i]:
                d3 = pi - p3[j]
                r = wp.length(d3)
                if r < radius and r > zero:
                    n = V()
                    if wp.static(dim == 2):
                        n = V(d3[0], d3[1]) / r
                    else:
                        n = V(d3[0], d3[1], d3[2]) / r
                    vrel = v[i] - v[j]
                    vn = wp.dot(vrel, n)
                    m_eff = mass[i] * mass[j] / (mass[i] + mass[j])
                    fn = wp.max(stiffness * (radius - r) - scalar(2.0) * damping * wp.sqrt(stiffness * m_eff) * vn,
                                zero)
                    vt = vrel - vn * n
                    fij = fn * n - (law.friction * fn / wp.sqrt(wp.dot(vt, vt) + law.slip * law.slip)) * vt
                    wp.atomic_add(f, i, fij)
                    wp.atomic_add(contact_out, i, fij)

    return SimpleNamespace(to_points3=to_points3, node_node=node_node, Law=Law, vec3=V3)


class BodyContact:
    """Per-solver state of deformable-deformable contact (grid, boundary mask, body ids, parameters)."""

    def __init__(self, solver, radius: float, stiffness: float, damping: float = 0.1, friction: float = 0.0,
                 slip_velocity: float = 1e-3):
        if not radius > 0 or not stiffness > 0 or damping < 0 or friction < 0 or not slip_velocity > 0:
            raise ConfigError("body contact needs radius > 0, stiffness > 0, damping >= 0, friction >= 0, "
                              "slip_velocity > 0")
        from meshsim.mesh import boundary_nodes

        n = len(solver.points)
        self.solver = solver
        self.radius, self.stiffness, self.damping = float(radius), float(stiffness), float(damping)
        self.friction, self.slip = float(friction), float(slip_velocity)
        self.body_np = body_ids(n, solver.cells)
        mask = np.zeros(n, np.int32)
        mask[boundary_nodes(solver.cells.astype(np.int64))] = 1
        self.num_bodies = int(self.body_np.max()) + 1
        self.k = make_contact_kernels(solver.dim, solver.scalar)
        dev = solver.device
        self.body = wp.array(self.body_np, dtype=wp.int32, device=dev)
        self.mask = wp.array(mask, dtype=wp.int32, device=dev)
        self.points3 = wp.zeros(n, dtype=self.k.vec3, device=dev)
        self.law = self.k.Law()
        S = solver.scalar
        self.law.radius, self.law.stiffness, self.law.damping = S(radius), S(stiffness), S(damping)
        self.law.friction, self.law.slip = S(friction), S(slip_velocity)
        self.grid = wp.HashGrid(128, 128, 128 if solver.dim == 3 else 1, device=dev, dtype=solver.scalar)

    def energy(self, x: np.ndarray) -> float:
        """Penalty potential 0.5 k (radius - r)^2 summed over node pairs of different bodies (host, per frame)."""
        from scipy.spatial import cKDTree

        nodes = np.flatnonzero(self.mask.numpy())
        pairs = cKDTree(x[nodes]).query_pairs(self.radius, output_type="ndarray")
        if len(pairs) == 0:
            return 0.0
        a, b = nodes[pairs[:, 0]], nodes[pairs[:, 1]]
        other = self.body_np[a] != self.body_np[b]
        r = np.linalg.norm(x[a[other]] - x[b[other]], axis=1)
        return float(0.5 * self.stiffness * np.sum((self.radius - r) ** 2))

    def stable_dt(self) -> float:
        m = self.solver.mass_np[self.solver.mass_np > 0].min() / 2  # effective mass of two equal nodes
        z = self.damping
        return 2 * np.sqrt(m / self.stiffness) * (np.sqrt(1 + z * z) - z)

    def launches(self, s_in, s_out, scratch, record: bool):
        """Operations of one substep, before the node update: hash the nodes, add the contact forces."""
        dev = self.solver.device
        n = len(self.solver.points)
        copy = wp.launch(self.k.to_points3, dim=n, inputs=[s_in.x, self.points3], device=dev, record_cmd=record)
        build = _Call(lambda: self.grid.build(self.points3, self.radius))
        if not record:
            build.launch()
        forces = wp.launch(self.k.node_node, dim=n, device=dev, record_cmd=record, inputs=[
            self.grid.id, self.points3, s_in.v, self.body, self.mask, self.solver.nodes.mass, self.law, scratch.f,
            scratch.body_contact])
        return [copy, build, forces] if record else []


class _Call:
    """A host call that sits in a recorded launch sequence."""

    def __init__(self, fn):
        self.fn = fn

    def launch(self):
        self.fn()
