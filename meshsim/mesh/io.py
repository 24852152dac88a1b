"""Mesh files and other libraries' mesh types: meshio (msh, vtu, vtk, xdmf, obj, stl, ply, off, ...) and trimesh.

`read_mesh` keeps the highest-dimensional cells of the file (tetrahedra over triangles, quads split into two
triangles) and drops lower ones (lines, vertices); triangle meshes whose z is zero everywhere come back 2D.
Surface-only formats (obj, stl, ply, off) hold triangles: write a tetrahedral mesh's `boundary_facets` there.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import numpy as np

from meshsim.errors import MeshError, OutputError
from meshsim.mesh.mesh import Mesh
from meshsim.outputs import atomic_path, output_folder

SURFACE_FORMATS = {".obj", ".stl", ".ply", ".off", ".glb", ".gltf"}
_TRIMESH_ONLY = {".glb", ".gltf", ".3mf", ".dae"}


def to_meshio(mesh: Mesh):
    import meshio

    return meshio.Mesh(mesh.points, [(mesh.cell_type, mesh.cells)])


def from_meshio(data, source: str = "mesh") -> Mesh:
    """Build a Mesh from a meshio.Mesh (see module docs for which cells are kept)."""
    blocks = {}
    for block in data.cells:
        cells = np.asarray(block.data)
        if block.type == "quad":
            cells = np.concatenate([cells[:, [0, 1, 2]], cells[:, [0, 2, 3]]])
            kind = "triangle"
        else:
            kind = block.type
        blocks.setdefault(kind, []).append(cells)
    kind = "tetra" if "tetra" in blocks else "triangle" if "triangle" in blocks else None
    if kind is None:
        found = ", ".join(sorted({b.type for b in data.cells})) or "none"
        raise MeshError(f"{source} has no triangle, quad or tetra cells (found: {found}); meshsim needs one of them")
    points = np.asarray(data.points, dtype=np.float64)
    if kind == "triangle" and points.ndim == 2 and points.shape[1] == 3 and not points[:, 2].any():
        points = points[:, :2]
    return Mesh(points, np.concatenate(blocks[kind]), kind)


def to_trimesh(mesh: Mesh):
    """A trimesh.Trimesh of the surface: the triangles themselves, or the boundary of a tetrahedral mesh."""
    import trimesh

    from meshsim.mesh.topology import boundary_facets

    faces = mesh.cells if mesh.cell_type == "triangle" else boundary_facets(mesh.cells)
    return trimesh.Trimesh(_as_3d(mesh.points), faces, process=False)


def from_trimesh(data, source: str = "mesh") -> Mesh:
    import trimesh

    if isinstance(data, trimesh.Scene):
        data = data.to_geometry() if hasattr(data, "to_geometry") else data.dump(concatenate=True)
    if not isinstance(data, trimesh.Trimesh) or len(data.faces) == 0:
        raise MeshError(f"{source} holds no triangle surface; pass a mesh file with faces")
    return Mesh(np.asarray(data.vertices, dtype=np.float64), np.asarray(data.faces, dtype=np.int64), "triangle")


def read_mesh(path: str | os.PathLike) -> Mesh:
    """Read any format meshio or trimesh reads; MeshError with one line when the file is unusable."""
    return read_mesh_file(path)[0]


def read_mesh_file(path: str | os.PathLike) -> tuple[Mesh, dict[str, int]]:
    """The mesh, and the number of cells of every type the file holds (including those the Mesh drops)."""
    path = Path(path)
    if not path.is_file():
        raise MeshError(f"{path}: no such mesh file")
    if path.suffix.lower() in _TRIMESH_ONLY:
        return _read_trimesh(path)
    import meshio

    try:
        with _quiet():
            data = meshio.read(path)
    except (Exception, SystemExit) as err:  # meshio raises many types for bad files, even SystemExit
        if isinstance(err, SystemExit):
            err = ValueError("not readable as any format meshio tries for this extension")
        elif isinstance(err, meshio.ReadError) and ("Unknown file format" in str(err) or "deduce" in str(err)):
            return _read_trimesh(path)
        raise MeshError(f"{path}: cannot read mesh ({_first_line(err)}); check the file and its extension") from None
    counts: dict[str, int] = {}
    for block in data.cells:
        counts[block.type] = counts.get(block.type, 0) + len(block.data)
    try:
        mesh = from_meshio(data, str(path))
    except MeshError as err:  # name the file: the mesh checks only know point and cell numbers
        raise MeshError(err if str(path) in str(err) else f"{path}: {err}") from None
    return mesh, counts


def write_mesh(mesh: Mesh, path: str | os.PathLike, file_format: str | None = None) -> None:
    """Write atomically (temporary name, then rename) in the format meshio picks from the extension."""
    import meshio

    path = Path(path)
    output_folder(path)
    suffix = path.suffix.lower()
    if suffix in SURFACE_FORMATS and mesh.cell_type != "triangle":
        raise MeshError(f"{path}: {suffix} stores surfaces; write tetrahedra to .msh/.vtu or write boundary_facets")
    data = to_meshio(mesh)
    if suffix in SURFACE_FORMATS:
        data.points = _as_3d(mesh.points)
    if suffix == ".msh" and file_format is None:
        file_format = "gmsh22"  # the ASCII version every tool reads
    try:
        with atomic_path(path, unique=True) as tmp, _quiet():
            meshio.write(tmp, data, file_format=file_format)
    except (OSError, KeyError, ValueError) as err:
        raise OutputError(f"cannot write {path}: {_first_line(err)}") from None


def _read_trimesh(path: Path) -> tuple[Mesh, dict[str, int]]:
    import trimesh

    try:
        data = trimesh.load(path, process=False)
    except Exception as err:  # trimesh raises assorted types for unreadable files
        raise MeshError(f"{path}: cannot read mesh ({_first_line(err)}); check the file and its extension") from None
    try:
        mesh = from_trimesh(data, str(path))
    except MeshError as err:
        raise MeshError(err if str(path) in str(err) else f"{path}: {err}") from None
    return mesh, {"triangle": mesh.num_cells}


@contextlib.contextmanager
def _quiet():
    """meshio prints warnings (e.g. missing gmsh tags) and errors itself; we report our own one line."""
    sink = io.StringIO()
    with (
        contextlib.redirect_stderr(sink),
        contextlib.redirect_stdout(sink),
        warnings.catch_warnings(),
        np.errstate(all="ignore"),
    ):
        warnings.simplefilter("ignore")
        yield


def _as_3d(points: np.ndarray) -> np.ndarray:
    return points if points.shape[1] == 3 else np.concatenate([points, np.zeros((len(points), 1))], 1)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
