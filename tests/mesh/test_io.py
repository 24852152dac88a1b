"""Mesh file round trips (msh, vtu, obj, stl, ply), trimesh/meshio conversions, unreadable files."""

import numpy as np
import pytest

from meshsim.errors import MeshError
from meshsim.mesh import (
    Mesh,
    box,
    from_meshio,
    from_trimesh,
    read_mesh,
    rectangle,
    sphere_surface,
    to_meshio,
    to_trimesh,
    write_mesh,
)


def triangles_as_coordinates(mesh):
    """Order-free geometry: each cell's point coordinates, cyclically rotated to a canonical start."""
    p = mesh.points[mesh.cells]
    rows = []
    for cell in p:
        rotations = [np.roll(cell, -i, axis=0) for i in range(len(cell))]
        rows.append(min(tuple(r.ravel().round(12)) for r in rotations))  # keeps orientation
    return sorted(rows)


@pytest.mark.parametrize("ext", ["msh", "vtu", "obj", "stl", "ply"])
@pytest.mark.parametrize("make", [lambda: rectangle((2.0, 1.0), (4, 3)), lambda: sphere_surface(1.5, 1)])
def test_triangle_round_trips(tmp_path, ext, make):
    mesh = make()
    path = tmp_path / f"mesh.{ext}"
    write_mesh(mesh, path)
    back = read_mesh(path)
    assert back.cell_type == "triangle" and back.dim == mesh.dim
    if ext == "stl":  # STL stores each triangle's corners; nodes are merged and renumbered on read
        assert triangles_as_coordinates(back) == triangles_as_coordinates(mesh)
    else:
        np.testing.assert_array_equal(back.points, mesh.points)
        np.testing.assert_array_equal(back.cells, mesh.cells)


@pytest.mark.parametrize("ext", ["msh", "vtu", "vtk", "xdmf"])
def test_tetra_round_trips(tmp_path, ext):
    mesh = box((1.0, 0.5, 0.25), (3, 2, 2))
    write_mesh(mesh, tmp_path / f"m.{ext}")
    back = read_mesh(tmp_path / f"m.{ext}")
    assert back.cell_type == "tetra"
    np.testing.assert_array_equal(back.points, mesh.points)
    np.testing.assert_array_equal(back.cells, mesh.cells)


def test_conversions_and_surface_formats(tmp_path):
    mesh = box(resolution=(2, 2, 2))
    same = from_meshio(to_meshio(mesh))
    np.testing.assert_array_equal(same.cells, mesh.cells)
    surface = to_trimesh(mesh)  # the boundary of the tetrahedra
    assert surface.is_watertight and surface.volume == pytest.approx(1.0)
    back = from_trimesh(surface)
    assert back.num_cells == 2 * 6 * 4
    with pytest.raises(MeshError, match="stores surfaces"):
        write_mesh(mesh, tmp_path / "m.stl")


def test_unreadable_files_give_one_line(tmp_path):
    cases = {"bad.msh": b"not a mesh", "bad.stl": b"\x00\x01\x02", "bad.weird": b"?", "empty.vtu": b""}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(MeshError) as err:
            read_mesh(tmp_path / name)
        assert name in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(MeshError, match="no such mesh file"):
        read_mesh(tmp_path / "absent.msh")
    import meshio

    meshio.write(tmp_path / "lines.vtu", meshio.Mesh(np.zeros((2, 3)), [("line", np.array([[0, 1]]))]))
    with pytest.raises(MeshError, match="no triangle, quad or tetra cells"):
        read_mesh(tmp_path / "lines.vtu")


def test_quads_are_split_and_mesh_checks_its_input():
    import meshio

    quads = meshio.Mesh(np.array([[0, 0], [1, 0], [1, 1], [0, 1.0]]), [("quad", np.array([[0, 1, 2, 3]]))])
    assert from_meshio(quads).num_cells == 2
    with pytest.raises(MeshError, match="outside"):
        Mesh(np.zeros((3, 2)), np.array([[0, 1, 3]]), "triangle")
    with pytest.raises(MeshError, match="not finite"):
        Mesh(np.array([[0, 0], [1, np.nan], [0, 1]]), np.array([[0, 1, 2]]), "triangle")
