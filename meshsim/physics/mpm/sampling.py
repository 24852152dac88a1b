"""Particles for MPM: regular lattices inside boxes, spheres and closed triangle meshes.

Each sampler returns positions [N, 3] (float32) on a lattice of spacing `spacing`, so every particle carries
the volume spacing^3 and a body of density rho has particle mass rho spacing^3. Lattices are centred in the
shape's bounding box so a shape sampled twice gives the same particles.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from meshsim.errors import MeshError


def _lattice(lo: np.ndarray, hi: np.ndarray, spacing: float) -> np.ndarray:
    counts = np.maximum(np.floor((hi - lo) / spacing + 1e-9).astype(int), 1)
    start = (lo + hi) / 2 - (counts - 1) * spacing / 2
    axes = [start[a] + spacing * np.arange(counts[a]) for a in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)


def sample_box(center, size, spacing: float) -> np.ndarray:
    """Particles at the cell centres of a lattice filling the axis-aligned box `center +- size/2`."""
    c, s = np.asarray(center, float), np.asarray(size, float) * np.ones(3)
    if spacing <= 0 or np.any(s <= 0):
        raise MeshError(f"box sampling needs positive size and spacing, got size {s.tolist()} spacing {spacing}")
    counts = np.maximum(np.round(s / spacing).astype(int), 1)
    axes = [c[a] + spacing * (np.arange(counts[a]) - (counts[a] - 1) / 2) for a in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3).astype(np.float32)


def sample_sphere(center, radius: float, spacing: float) -> np.ndarray:
    """Lattice particles inside the ball of `radius` around `center`."""
    if spacing <= 0 or radius <= 0:
        raise MeshError(f"sphere sampling needs positive radius and spacing, got {radius}, {spacing}")
    c = np.asarray(center, float)
    pts = _lattice(c - radius, c + radius, spacing)
    return pts[np.linalg.norm(pts - c, axis=1) <= radius].astype(np.float32)


def winding_number(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Generalized winding number of a closed triangle mesh at `points` (1 inside, 0 outside): the sum of the
    triangles' signed solid angles (Van Oosterom and Strackee) over 4 pi. Needs no spatial index."""
    tri = vertices[faces]  # [M, 3, 3]
    out = np.empty(len(points))
    for s in range(0, len(points), chunk):
        d = tri[None] - points[s : s + chunk, None, None, :]  # [P, M, 3, 3]
        a, b, c = d[:, :, 0], d[:, :, 1], d[:, :, 2]
        la, lb, lc = (np.linalg.norm(v, axis=-1) for v in (a, b, c))
        det = np.einsum("pmi,pmi->pm", a, np.cross(b, c))
        den = (la * lb * lc + np.einsum("pmi,pmi->pm", a, b) * lc + np.einsum("pmi,pmi->pm", b, c) * la
               + np.einsum("pmi,pmi->pm", c, a) * lb)
        out[s : s + chunk] = 2 * np.arctan2(det, den).sum(-1) / (4 * np.pi)
    return out


def load_mesh(path: str | Path):
    """A watertight trimesh from a file; MeshError naming the file otherwise."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise MeshError(f"mesh file {path} not found: pass an existing .obj/.stl/.ply file")
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            mesh = trimesh.load(path, force="mesh")  # meshio-backed formats print their own errors
    except Exception as err:  # trimesh raises many types for unreadable files
        raise MeshError(f"mesh file {path} cannot be read ({type(err).__name__}): export it as .obj or .stl") from None
    if len(mesh.faces) == 0 or not np.all(np.isfinite(mesh.vertices)):
        raise MeshError(f"mesh file {path} has no faces or non-finite vertices: repair the mesh")
    if not mesh.is_watertight:
        raise MeshError(f"mesh file {path} is not watertight, so its inside is undefined: close the holes")
    return mesh


def sample_mesh(mesh, center, size: float, spacing: float) -> np.ndarray:
    """Lattice particles inside a closed mesh scaled so its longest side is `size` and centred at `center`."""
    if isinstance(mesh, (str, Path)):
        mesh = load_mesh(mesh)
    lo, hi = mesh.bounds
    scale = size / float(np.max(hi - lo))
    pts = _lattice(lo, hi, spacing / scale)
    inside = winding_number(np.asarray(mesh.vertices, float), np.asarray(mesh.faces), pts) > 0.5
    if not inside.any():
        raise MeshError(f"no particle falls inside the mesh at spacing {spacing}: use a smaller spacing")
    pts = (pts[inside] - (lo + hi) / 2) * scale + np.asarray(center, float)
    return pts.astype(np.float32)
