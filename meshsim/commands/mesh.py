"""`meshsim mesh info FILE [--json]`: counts, cell types, bounding box and quality of any mesh file."""

from __future__ import annotations

import json

from meshsim.commands import add_command, add_json_flag, command_group


def register(subparsers) -> None:
    sub = command_group(subparsers, "mesh", "inspect mesh files (any meshio/trimesh format)")
    info = add_command(
        sub, "info", run_info,
        help="counts, cell types, bounding box, quality and defects of a mesh file",
        description="Read a mesh (msh, vtu, vtk, xdmf, obj, stl, ply, off, glb, ...) and report counts, cell type, "
        "bounding box, element quality and defects: inverted or degenerate cells, duplicate or unreferenced "
        "nodes, open and non-manifold surface edges.",
    )
    info.add_argument("file", help="mesh file, e.g. plate.msh")
    add_json_flag(info, "the report")


def run_info(args) -> int:
    from meshsim.mesh import format_mesh_info, mesh_info

    info = mesh_info(args.file)
    print(json.dumps(info) if args.json else format_mesh_info(info))
    return 0
