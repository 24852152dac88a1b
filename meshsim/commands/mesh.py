"""`meshsim mesh info FILE [--json]`: counts, cell types, bounding box and quality of any mesh file."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    group = subparsers.add_parser("mesh", help="inspect mesh files (any meshio/trimesh format)")
    sub = group.add_subparsers(dest="mesh_command", metavar="SUBCOMMAND")
    group.set_defaults(func=None, subparser=group)
    info = sub.add_parser(
        "info",
        help="counts, cell types, bounding box, quality and defects of a mesh file",
        description="Read a mesh (msh, vtu, vtk, xdmf, obj, stl, ply, off, glb, ...) and report counts, cell type, "
        "bounding box, element quality and defects: inverted or degenerate cells, duplicate or unreferenced "
        "nodes, open and non-manifold surface edges.",
    )
    info.add_argument("file", help="mesh file, e.g. plate.msh")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    info.set_defaults(func=run_info)


def run_info(args) -> int:
    from meshsim.mesh import format_mesh_info, mesh_info

    info = mesh_info(args.file)
    print(json.dumps(info) if args.json else format_mesh_info(info))
    return 0
