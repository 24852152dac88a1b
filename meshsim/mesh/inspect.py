"""The report behind `meshsim mesh info`: counts, cell types, bounding box, quality and defects of a file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from meshsim.mesh.io import read_mesh_file
from meshsim.mesh.quality import defects, quality


def mesh_info(path: str | os.PathLike) -> dict[str, Any]:
    mesh, file_cells = read_mesh_file(path)
    q = quality(mesh)
    info: dict[str, Any] = {
        "path": str(Path(path)),
        "nodes": mesh.num_nodes,
        "cells": mesh.num_cells,
        "cell_type": mesh.cell_type,
        "file_cells": file_cells,
        "dim": mesh.dim,
        "bbox_min": mesh.points.min(0).tolist() if mesh.num_nodes else None,
        "bbox_max": mesh.points.max(0).tolist() if mesh.num_nodes else None,
    }
    if mesh.num_cells:
        size = np.abs(q["measure"])
        info["quality"] = {
            "total_measure": float(q["measure"].sum()),
            "min_measure": float(size.min()),
            "max_measure": float(size.max()),
            "min_radius_ratio": float(q["radius_ratio"].min()),
            "mean_radius_ratio": float(q["radius_ratio"].mean()),
            "max_aspect_ratio": float(q["aspect_ratio"].max()),
            "min_angle_deg": float(q["min_angle"].min()),
        }
    info["defects"] = defects(mesh)
    return info


def format_mesh_info(info: dict[str, Any]) -> str:
    measure = {2: "area", 3: "volume"}[info["dim"]] if info["cell_type"] == "tetra" or info["dim"] == 2 else "area"
    lines = [
        f"file        {info['path']}",
        f"nodes       {info['nodes']}",
        f"cells       {info['cells']} {info['cell_type']} ({info['dim']}D points)",
        "in file     " + ", ".join(f"{n} {kind}" for kind, n in info["file_cells"].items()),
    ]
    if info["bbox_min"] is not None:
        lo = ", ".join(f"{v:.6g}" for v in info["bbox_min"])
        hi = ", ".join(f"{v:.6g}" for v in info["bbox_max"])
        lines.append(f"bbox        [{lo}] .. [{hi}]")
    if "quality" in info:
        q = info["quality"]
        angle = "min dihedral angle" if info["cell_type"] == "tetra" else "min angle"
        lines += [
            f"{measure:<11} total {q['total_measure']:.6g}, per cell {q['min_measure']:.4g} .. {q['max_measure']:.4g}",
            f"quality     radius ratio min {q['min_radius_ratio']:.3f} mean {q['mean_radius_ratio']:.3f} (1 = regular),"
            f" max aspect ratio {q['max_aspect_ratio']:.3g}, {angle} {q['min_angle_deg']:.2f} deg",
        ]
    d = info["defects"]
    problems = [k for k in ("inverted", "degenerate", "duplicate_nodes", "unreferenced_nodes") if d[k]]
    for key in ("inverted", "degenerate", "duplicate_nodes", "unreferenced_nodes"):
        first = f" (first: {d['first_' + key]})" if d[key] else ""
        lines.append(f"{key.replace('_', ' '):<20}{d[key]}{first}")
    if "surface_triangles" in d:
        lines.append(f"surface     {d['surface_triangles']} triangles, {d['open_edges']} open edges, "
                     f"{d['non_manifold_edges']} non-manifold edges")  # fmt: skip
        problems += ["non_manifold_edges"] if d["non_manifold_edges"] else []
    lines.append("verdict     " + ("ok" if not problems else "problems: " + ", ".join(problems)))
    return "\n".join(lines)
