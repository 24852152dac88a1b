"""Mesh toolkit: the Mesh type, primitives, topology (edges, boundary), quality, file I/O and conversions.

    from meshsim.mesh import box, edges_from_cells, quality, read_mesh
    plate = slab((0.2, 0.1), 0.005, (20, 10), layers=2)
    senders, receivers = edges_from_cells(plate.cells)

`meshsim.mesh.hierarchy` (HCMT coarsening) is imported on its own.
"""

from meshsim.mesh.inspect import format_mesh_info, mesh_info
from meshsim.mesh.io import from_meshio, from_trimesh, read_mesh, read_mesh_file, to_meshio, to_trimesh, write_mesh
from meshsim.mesh.mesh import Mesh
from meshsim.mesh.primitives import box, disk, graded_coordinates, rectangle, slab, sphere_surface, sphere_volume
from meshsim.mesh.quality import defects, quality, signed_measure
from meshsim.mesh.topology import boundary_areas, boundary_facets, boundary_nodes, cell_facets, edges_from_cells

__all__ = [
    "Mesh",
    "boundary_areas",
    "boundary_facets",
    "boundary_nodes",
    "box",
    "cell_facets",
    "defects",
    "disk",
    "edges_from_cells",
    "format_mesh_info",
    "from_meshio",
    "from_trimesh",
    "graded_coordinates",
    "mesh_info",
    "quality",
    "read_mesh",
    "read_mesh_file",
    "rectangle",
    "signed_measure",
    "slab",
    "sphere_surface",
    "sphere_volume",
    "to_meshio",
    "to_trimesh",
    "write_mesh",
]
