"""The MPM solver: preallocated Warp buffers for one particle set and one grid, and the launches of one step.

One step maps particle state (x, v, C, F) and a Kirchhoff stress tau per particle to the next state: P2G and
G2P (`transfer`), the grid update with walls and colliders between them (`grid`); `backward()` runs the
hand-written adjoints (`adjoint`) in reverse. The stress comes from outside (any callable F -> tau), which
keeps the solver free of material laws; `bridge` makes a step differentiable for PyTorch.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
import warp as wp

from meshsim.errors import ConfigError
from meshsim.kernels import init_warp
from meshsim.kernels._warp import run_parallel, split_range

from .adjoint import g2p_adjoint_kernel, grid_adjoint_kernel, p2g_adjoint_kernel
from .config import MPMConfig
from .grid import Grid, add_kernel, grid_kernel, make_grid
from .stencil import PAD
from .transfer import PARTICLE_FIELDS, STATE_FIELDS, Particles, g2p_kernel, make_particles, p2g_kernel

# A particle range worth its own CPU thread: its share of the kernels must beat a thread's wake-up (~80 us) and
# the zeroing and summing of its own two grid copies (~1 us per 1,000 nodes, measured on a 32^3 grid).
PARTICLES_PER_THREAD = 2048
PARTICLES_PER_THREAD_PER_NODE = 1 / 16  # on top, per node of the grid (res 64: ~21k particles per range)
NODES_PER_THREAD = 1 << 17  # summing grid copies is a light pass over memory: threads pay off on large grids


def _ranges(n: int, threads: int, least: int) -> list[tuple[int, int]]:
    """[lo, hi) ranges splitting n items over at most `threads` threads, at least `least` items each."""
    return [(lo, lo + count) for lo, count in split_range(n, max(1, min(threads, n // least)))]


def _run(groups: list[list]) -> None:
    """Call each group's calls (recorded launches, zeroings) in order, the groups on parallel threads."""
    run_parallel([partial(_call_all, group) for group in groups])


def _call_all(calls: list) -> None:
    for call in calls:
        call()


def _adjoints(args):
    """Adjoint arguments of a launch: an array's Warp-owned grad, a zero value for vectors/scalars and
    structs (the boundary conditions are not differentiated)."""
    out = []
    for a in args:
        if isinstance(a, wp.array):
            out.append(a.grad if a.requires_grad else None)
        elif isinstance(a, Grid.cls):
            out.append(Grid())
        elif isinstance(a, Particles.cls):
            out.append(_particle_set({name: getattr(a, name) for name in PARTICLE_FIELDS}, lambda b: b, grad=True))
        elif wp.types.is_value(a):
            out.append(type(a)())
        else:
            out.append(None)
    return out


def _particle_set(arrays: dict, own, grad: bool = False) -> Particles:
    """A `Particles` of own(a) for each named Warp array, or of own(a.grad) for the differentiable ones."""
    if grad:
        return make_particles(**{n: own(a.grad) for n, a in arrays.items() if a is not None and a.requires_grad})
    return make_particles(**{n: own(a) for n, a in arrays.items()})


class MPMSolver:
    """Preallocated Warp buffers for one particle set and one grid; `step()` advances `inp` into `out`.

    Buffers (Warp arrays, all on `device`): inputs x, v, C, F, tau; outputs x1, v1, C1, F1; per-particle mass
    and vol; grid_mv [(res+3)^3, vec4 = (m v, m)] and grid_v. Per-particle material ids live with the
    material (`materials.MaterialMix`), which computes tau, so the kernels need none. `bridge` fills the inputs from
    torch tensors; a pure-Warp caller may write them directly (e.g. via `wp.to_torch`) and call `swap()`.

    `threads` (CPU only; default: torch's CPU thread count) splits the particle kernels over that many cores
    for scenes of a few thousand particles or more (Warp runs a CPU kernel on one thread). Results then differ
    from one thread's in the last bits (the grid sums in another order) but repeat exactly for the same count.
    """

    def __init__(
        self, cfg: MPMConfig, mass: np.ndarray, vol: np.ndarray, device: str = "cpu", threads: int | None = None
    ):
        init_warp()
        self.cfg = cfg
        self.device = wp.get_device(device)
        n = len(mass)
        if n == 0 or len(vol) != n:
            raise ConfigError(f"MPM needs as many volumes as masses and at least one particle, got {n}/{len(vol)}")
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise ConfigError(f"MPM threads must be an integer >= 1 (or None: torch's thread count), got {threads!r}")
        self.num_particles = n
        d = self.device
        vec, mat = wp.vec3, wp.mat33
        self.x, self.v, self.x1, self.v1 = (wp.zeros(n, dtype=vec, device=d, requires_grad=True) for _ in range(4))
        self.C, self.F, self.tau, self.C1, self.F1 = (
            wp.zeros(n, dtype=mat, device=d, requires_grad=True) for _ in range(5)
        )
        self.mass = wp.array(np.asarray(mass, np.float32), dtype=float, device=d)
        self.vol = wp.array(np.asarray(vol, np.float32), dtype=float, device=d)
        shape = (cfg.res + 1 + 2 * PAD,) * 3
        self.grid_mv = wp.zeros(shape, dtype=wp.vec4, device=d, requires_grad=True)
        self.grid_v = wp.zeros(shape, dtype=wp.vec3, device=d, requires_grad=True)
        # On CPU the particle kernels run over contiguous particle ranges on several cores (`_run`). The two
        # scatters (P2G into grid_mv, adjoint G2P into grid_v.grad) get one grid per range after the first,
        # summed into the first; a CUDA launch is already parallel and uses a single range.
        wanted = 1 if self.device.is_cuda else (threads or torch.get_num_threads())
        least = PARTICLES_PER_THREAD + int(PARTICLES_PER_THREAD_PER_NODE * self.grid_mv.size)
        self.particle_ranges = _ranges(n, wanted, least)
        self.node_ranges = _ranges(self.grid_mv.size, len(self.particle_ranges), NODES_PER_THREAD)
        extra = len(self.particle_ranges) - 1
        self._mv_parts = [self.grid_mv] + [wp.zeros(shape, dtype=wp.vec4, device=d) for _ in range(extra)]
        self._adj_v_parts = [self.grid_v.grad] + [wp.zeros(shape, dtype=wp.vec3, device=d) for _ in range(extra)]
        self.grid = make_grid(cfg, d)
        self._recorded: dict = {}
        self._record()

    def _args(self, lo: int = 0, hi: int | None = None, part: int = 0):
        """Launch arguments (inputs, outputs) of P2G, the grid update and G2P; P2G and G2P over the particles
        [lo, hi) only, P2G scattering into grid copy `part`."""
        hi = self.num_particles if hi is None else hi

        def own(a):  # the particle range's view of a per-particle array
            return a if (lo, hi) == (0, self.num_particles) else a[lo:hi]

        particles, out = _particle_set(self._inputs(), own), _particle_set(self._outputs(), own)
        p2g = ([particles, self.grid], [self._mv_parts[part]])
        grid = ([self.grid_mv.flatten(), self.grid], [self.grid_v.flatten()])
        g2p = ([particles, self.grid_v, self.grid], [out])
        return p2g, grid, g2p, own

    def _inputs(self) -> dict:
        return {name: getattr(self, name) for name in PARTICLE_FIELDS}

    def _outputs(self) -> dict:
        return {name: getattr(self, name + "1") for name in STATE_FIELDS}

    def _record(self) -> None:
        """Pre-built launches (forward and adjoint) for the current buffer assignment: replaying them skips
        Warp's argument packing on every step. Built once for each of the two assignments `swap()` toggles.

        Each stage is a list of groups, one per thread, each a list of calls run in order (`_run`); a range
        zeroes its own scatter target first, so that the zeroing runs in parallel too.
        """
        key = id(self.x)
        if key in self._recorded:
            self._launches, self._adjoint_launches = self._recorded[key]
            return
        d, nodes = self.device, self.grid_mv.size

        def rec(kernel, dim, inputs, outputs):
            return wp.launch(kernel, dim, inputs=inputs, outputs=outputs, device=d, record_cmd=True).launch

        p2g, g2p, g2p_adj, p2g_adj = [], [], [], []
        for part, (lo, hi) in enumerate(self.particle_ranges):
            (a, oa), _, (c, oc), own = self._args(lo, hi, part)
            p2g.append([self._mv_parts[part].zero_, rec(p2g_kernel, hi - lo, a, oa)])
            g2p.append([rec(g2p_kernel, hi - lo, c, oc)])
            adj, adj_out = _particle_set(self._inputs(), own, grad=True), _particle_set(self._outputs(), own, grad=True)
            # The one adjoint accumulated with atomics (the others are written whole): zeroed first.
            g2p_adj.append([self._adj_v_parts[part].zero_,
                            rec(g2p_adjoint_kernel, hi - lo, [*c, *oc, adj_out], [adj, self._adj_v_parts[part]])])
            p2g_adj.append([rec(p2g_adjoint_kernel, hi - lo, [*a, self.grid_mv.grad], [adj])])
        _, (b, ob), _, _ = self._args()
        grid = [[rec(grid_kernel, nodes, b, ob)]]
        grid_adj = [[rec(grid_adjoint_kernel, nodes, [*b, ob[0].grad], [self.grid_mv.grad.flatten()])]]
        self._launches = {"p2g": p2g, "sum": self._summing(self._mv_parts), "grid": grid, "g2p": g2p}
        self._adjoint_launches = {  # in the order they run
            "g2p": g2p_adj, "sum": self._summing(self._adj_v_parts), "grid": grid_adj, "p2g": p2g_adj,
        }
        self._recorded[key] = self._launches, self._adjoint_launches

    def _summing(self, parts) -> list:
        """Launch groups that add grid copies 1.. into copy 0, each thread over its own range of nodes."""
        if len(parts) == 1:
            return [[]]
        flat = [p.flatten() for p in parts]
        return [
            [wp.launch(add_kernel, hi - lo, inputs=[flat[0][lo:hi], f[lo:hi]], device=self.device,
                       record_cmd=True).launch for f in flat[1:]]
            for lo, hi in self.node_ranges
        ]

    def grid_pass(self) -> None:
        """P2G and grid update from the input buffers (also used to recompute the grid in backward)."""
        for stage in ("p2g", "sum", "grid"):
            _run(self._launches[stage])

    def step(self) -> None:
        """One explicit step: inputs (x, v, C, F, tau) -> outputs (x1, v1, C1, F1)."""
        self.grid_pass()
        _run(self._launches["g2p"])

    def swap(self) -> None:
        """Make the outputs the next inputs (pure-Warp stepping without copies)."""
        self.x, self.x1 = self.x1, self.x
        self.v, self.v1 = self.v1, self.v
        self.C, self.C1 = self.C1, self.C
        self.F, self.F1 = self.F1, self.F
        self._record()

    def backward(self, generated: bool = False) -> None:
        """Set the input adjoints (x.grad, v.grad, C.grad, F.grad, tau.grad) from the output adjoints
        (x1.grad, ...) of the step last run forward.

        Expects the inputs and the outputs v1, C1 to hold that step's values; recomputes the grid, then runs
        the adjoints G2P -> grid -> P2G directly (no tape), so only Warp-owned grad buffers are written. The
        adjoints are hand-written (`adjoint`); `generated=True` uses Warp's generated ones (for tests).
        """
        if generated:
            self._generated_backward()
            return
        self.grid_pass()
        for stage in self._adjoint_launches.values():
            _run(stage)

    def _generated_backward(self) -> None:
        for arr in (self.x, self.v, self.C, self.F, self.tau, self.grid_mv, self.grid_v):
            arr.grad.zero_()
        self.grid_pass()
        d, n = self.device, self.num_particles
        for kernel, dim, (inputs, outputs) in reversed(
            list(zip((p2g_kernel, grid_kernel, g2p_kernel), (n, self.grid_mv.size, n), self._args()[:3]))
        ):
            wp.launch(kernel, dim, inputs=inputs, outputs=outputs, adj_inputs=_adjoints(inputs),
                      adj_outputs=_adjoints(outputs), adjoint=True, device=d, record_tape=False)

    def grid_mass_momentum(self) -> np.ndarray:
        """[(res+3)^3, 4] node (m v, m) of the last grid pass (for tests and diagnostics)."""
        return self.grid_mv.numpy().reshape(-1, 4)

    def node_positions(self) -> np.ndarray:
        """[(res+3)^3, 3] positions of the grid nodes, padding included, in the order of `grid_mass_momentum`."""
        idx = np.arange(self.cfg.res + 1 + 2 * PAD) - PAD
        g = np.stack(np.meshgrid(idx, idx, idx, indexing="ij"), -1).reshape(-1, 3)
        return g * self.cfg.dx
