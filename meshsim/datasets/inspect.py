"""Whole-file validation and the summary behind `meshsim data inspect`."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from meshsim.datasets.reader import TrajectoryFile
from meshsim.datasets.schema import NodeType
from meshsim.errors import DataFormatError


def validate_file(path: str | os.PathLike) -> list[str]:
    """Read and validate every trajectory (one at a time); return their ids or raise DataFormatError."""
    return summarize(path)["ids"]


def summarize(path: str | os.PathLike) -> dict[str, Any]:
    """Validate every trajectory of a store and summarize it: sizes, dt, units, fields, node types, ranges."""
    ranges: dict[str, list[float]] = {}
    node_types: Counter = Counter()
    rows = []
    with TrajectoryFile(path) as f:
        root = {k: v for k, v in f.attrs.items() if isinstance(v, (str, int, float, bool))}
        ids = f.ids
        field_shapes: dict[str, list] = {}
        for traj_id in ids:
            traj = f.read(traj_id)
            rows.append({
                "id": traj_id, "nodes": traj.num_nodes, "cells": traj.num_cells, "cell_type": traj.cell_type,
                "frames": traj.num_frames, "dt": traj.dt, "dim": int(traj.world_pos.shape[2]),
            })  # fmt: skip
            node_types.update(traj.node_type.tolist())
            arrays = {"world_pos": traj.world_pos, **{f"fields/{k}": v for k, v in traj.fields.items()}}
            arrays.update({f"globals/{k}": v for k, v in traj.globals.items()})
            if traj.pred_world_pos is not None:
                arrays["pred/world_pos"] = traj.pred_world_pos
                arrays.update({f"pred/fields/{k}": v for k, v in traj.pred_fields.items()})
            for name, arr in arrays.items():
                field_shapes.setdefault(name, ["T", "N", *arr.shape[2:]] if arr.ndim > 1 else ["T"])
                lo, hi = float(arr.min()), float(arr.max())
                old = ranges.get(name, [lo, hi])
                ranges[name] = [min(old[0], lo), max(old[1], hi)]
    type_names = {int(t): t.name for t in NodeType if t != NodeType.SIZE}
    return {
        "path": str(path),
        "format": root.get("format"),
        "format_version": root.get("format_version"),
        "units": {k: root[k] for k in ("length_unit", "time_unit", "stress_unit") if k in root},
        "creator": root.get("creator"),
        "attrs": {
            k: v
            for k, v in root.items()
            if k not in ("format", "format_version", "creator") and not k.endswith("_unit")
        },  # fmt: skip
        "ids": ids,
        "complete": root.get("import_status", "complete") == "complete",  # an interrupted import is not
        "num_trajectories": len(ids),
        "total_frames": sum(r["frames"] for r in rows),
        "trajectories": rows,
        "fields": {name: field_shapes[name] for name in sorted(field_shapes)},
        "node_types": {type_names.get(t, str(t)): n for t, n in sorted(node_types.items())},
        "ranges": {name: ranges[name] for name in sorted(ranges)},
    }


def check_complete(summary: dict[str, Any]) -> None:
    """DataFormatError when the summarized store is an interrupted import (valid so far, but not all of it)."""
    if not summary.get("complete", True):
        raise DataFormatError(
            f"{summary['path']} is an interrupted import ({summary['num_trajectories']} trajectories so far): run the "
            "same `meshsim data import` again to finish it")


def _span(values: list) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:g}" if lo == hi else f"{lo:g}..{hi:g}"


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable text of `summarize`'s result."""
    rows = summary["trajectories"]
    lines = [
        f"file          {summary['path']}",
        f"format        {summary['format']} v{summary['format_version']} ({summary['creator']})",
        "units         " + ", ".join(f"{k.removesuffix('_unit')}: {v}" for k, v in summary["units"].items()),
        f"trajectories  {summary['num_trajectories']} ({summary['total_frames']} frames in all)",
    ]
    if rows:
        lines += [
            f"nodes         {_span([r['nodes'] for r in rows])}",
            f"cells         {_span([r['cells'] for r in rows])} ({', '.join(sorted({r['cell_type'] for r in rows}))})",
            f"frames        {_span([r['frames'] for r in rows])}",
            f"dt            {_span([r['dt'] for r in rows])} s",
            f"dimension     {_span([r['dim'] for r in rows])}",
        ]
    for key, value in summary["attrs"].items():
        lines.append(f"attr          {key} = {value}")
    counts = ", ".join(f"{k}: {v}" for k, v in summary["node_types"].items()) or "-"
    lines.append(f"node types    {counts} (nodes, summed over the {summary['num_trajectories']} trajectories)")
    lines.append("fields (value range):")
    for name, shape in summary["fields"].items():
        lo, hi = summary["ranges"][name]
        lines.append(f"  {name:<24} [{', '.join(map(str, shape))}]  {lo:.6g} .. {hi:.6g}")
    if not summary.get("complete", True):
        lines.append("valid         no: an interrupted import; run the same `meshsim data import` again to finish it")
    else:
        lines.append("valid         yes (shapes, dtypes, index ranges, node types, finite values, dt)")
    return "\n".join(lines)
