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
    """Node-node contact of a model, fixed once built: penalty law, body ids, boundary mask. The neighbour search's
    working memory (`search_grid()`) belongs to whoever steps, so the model stays read-only."""

    def __init__(self, cells: np.ndarray, mass: np.ndarray, mass_wp: wp.array, *, scalar, device, radius: float,
                 stiffness: float, damping: float = 0.1, friction: float = 0.0, slip_velocity: float = 1e-3):
        if not radius > 0 or not stiffness > 0 or damping < 0 or friction < 0 or not slip_velocity > 0:
            raise ConfigError("body contact needs radius > 0, stiffness > 0, damping >= 0, friction >= 0, "
                              "slip_velocity > 0")
        from meshsim.mesh import boundary_nodes

        n = len(mass)
        self.dim = cells.shape[1] - 1
        self.device = device
        self.mass_np, self.mass = mass, mass_wp  # lumped node masses (host, device)
        self.radius, self.stiffness, self.damping = float(radius), float(stiffness), float(damping)
        self.friction, self.slip = float(friction), float(slip_velocity)
        self.body_np = body_ids(n, cells)
        mask = np.zeros(n, np.int32)
        mask[boundary_nodes(cells.astype(np.int64))] = 1
        self.num_bodies = int(self.body_np.max()) + 1
        self.k = make_contact_kernels(self.dim, scalar)
        self.scalar = scalar
        self.body = wp.array(self.body_np, dtype=wp.int32, device=device)
        self.mask = wp.array(mask, dtype=wp.int32, device=device)
        self.law = self.k.Law()
        S = scalar
        self.law.radius, self.law.stiffness, self.law.damping = S(radius), S(stiffness), S(damping)
        self.law.friction, self.law.slip = S(friction), S(slip_velocity)

    def search_grid(self) -> SimpleNamespace:
        """Working memory of the neighbour search: 3D copies of the positions and the hash grid."""
        return SimpleNamespace(points3=wp.zeros(len(self.mass_np), dtype=self.k.vec3, device=self.device),
                               hash=wp.HashGrid(128, 128, 128 if self.dim == 3 else 1, device=self.device,
                                                dtype=self.scalar))

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
        m = self.mass_np[self.mass_np > 0].min() / 2  # effective mass of two equal nodes
        z = self.damping
        return 2 * np.sqrt(m / self.stiffness) * (np.sqrt(1 + z * z) - z)

    def launches(self, s_in, forces, grid: SimpleNamespace, record: bool):
        """Operations of one substep, before the node update: hash the nodes (in `grid`, from `search_grid()`),
        add the contact forces to `forces` (a FemForces)."""
        dev = self.device
        n = len(self.mass_np)
        copy = wp.launch(self.k.to_points3, dim=n, inputs=[s_in.x, grid.points3], device=dev, record_cmd=record)
        build = _Call(lambda: grid.hash.build(grid.points3, self.radius))
        if not record:
            build.launch()
        add = wp.launch(self.k.node_node, dim=n, device=dev, record_cmd=record, inputs=[
            grid.hash.id, grid.points3, s_in.v, self.body, self.mask, self.mass, self.law, forces.f,
            forces.between_bodies])
        return [copy, build, add] if record else []


class _Call:
    """A host call that sits in a recorded launch sequence."""

    def __init__(self, fn):
        self.fn = fn

    def launch(self):
        self.fn()
