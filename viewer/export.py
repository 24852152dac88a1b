"""`meshsim export`: a trajectory as a ParaView time series, or one frame as a mesh file.

    export_trajectory("rollout.h5", "vtkhdf")                   # -> rollout-00000.vtkhdf beside the input
    export_trajectory("rollout.h5", "ply", frame=-1, color="error", output="last.ply")

Time series (vtkhdf, xdmf, pvd) carry per step: the points of the chosen source (ground truth or prediction),
`displacement` from the reference mesh, every stored field of that source (vector fields keep their components),
`error` = |pred - gt| for rollouts, and `node_type`. Single frames (obj, ply, glb) go through trimesh: the surface
triangles (boundary faces of tetrahedra) or the points of particle data, with vertex colours from a field in PLY
and GLB (OBJ has no standard vertex colours).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from meshsim.viewer import paraview
from meshsim.viewer.colormap import colorize
from meshsim.viewer.source import FrameSource

from meshsim.errors import ConfigError, OutputError
from meshsim.outputs import output_folder

SERIES_FORMATS = {"vtkhdf": ".vtkhdf", "xdmf": ".xdmf", "pvd": ".pvd"}
FRAME_FORMATS = {"obj": ".obj", "ply": ".ply", "glb": ".glb"}
FORMATS = tuple(SERIES_FORMATS) + tuple(FRAME_FORMATS)


def export_trajectory(path: str | os.PathLike, fmt: str, output: str | os.PathLike | None = None,
                      traj: str | None = None, frame: int | None = None, source: str | None = None,
                      color: str | None = None, force: bool = False) -> list[str]:  # fmt: skip
    """Write one trajectory of `path` in format `fmt`; returns the paths written (files and folders).

    traj: id (default: the first); source: "gt" or "pred" (default: pred in rollouts); frame: for obj/ply/glb
    (default 0, negative counts from the end); color: field for vertex colours (default: the viewer's default)."""
    if fmt not in FORMATS:
        raise ConfigError(f"export format {fmt!r} unknown; use one of {', '.join(FORMATS)}")
    with FrameSource(path) as data:
        traj = data.require(traj if traj is not None else data.ids[0])
        source = source or ("pred" if data.is_rollout else "gt")
        if source not in data.sources(traj):
            raise ConfigError(f"--source {source!r} is not in {path}; use one of {', '.join(data.sources(traj))}")
        if fmt in SERIES_FORMATS and frame is not None:
            raise ConfigError(f"--frame applies to single-frame formats (obj, ply, glb), not to {fmt}; drop it")
        out = _output_path(path, fmt, output, traj, frame, data)
        companion = {"xdmf": [out.with_suffix(".h5")], "pvd": [out.with_suffix("")]}.get(fmt, [])  # heavy data
        targets = [out, *companion]
        if fmt == "xdmf" and Path(path).resolve() == out.with_suffix(".h5").resolve():
            raise OutputError(f"XDMF export of {path} would write its heavy data over the input; pass -o OTHER.xdmf")
        existing = [str(p) for p in targets if p.exists()]
        if existing and not force:
            raise OutputError(f"{existing[0]} exists; pass --force to overwrite it or choose another -o")
        if fmt in SERIES_FORMATS:
            writer = {"vtkhdf": paraview.write_vtkhdf, "xdmf": paraview.write_xdmf, "pvd": paraview.write_pvd}[fmt]
            written = writer(_series(data, traj, source), out)
        else:
            written = _write_frame(data, traj, source, frame or 0, color, fmt, out)
    return [str(p) for p in written]


def _output_path(path, fmt: str, output, traj: str, frame: int | None, data: FrameSource) -> Path:
    suffix = SERIES_FORMATS.get(fmt) or FRAME_FORMATS[fmt]
    if output is None:
        stem = Path(path).with_suffix("").name
        name = f"{stem}-{traj}" + (f"-t{_frame_index(data, traj, frame or 0):04d}" if fmt in FRAME_FORMATS else "")
        out = Path(path).parent / (name + suffix)
    else:
        out = Path(output)
        if out.suffix.lower() != suffix:
            raise ConfigError(f"output {out} does not end in {suffix} for format {fmt}; rename it or change --format")
    output_folder(out)
    return out


def _series(data: FrameSource, traj: str, source: str) -> paraview.Series:
    info = data.info(traj)
    reference = data.reference(traj)

    def frame(t: int):
        points = data.positions(traj, t, source)
        values = {}
        for name in info["stored_fields"]:
            if source in info["fields"][name]:
                values[name] = _stored_field(data, traj, name, t, source)
        if data.is_rollout:
            values["error"] = data.field(traj, "error", t)
        return points, values

    return paraview.Series(
        reference=reference, cells=data.cells(traj), times=np.arange(info["num_frames"]) * info["dt"], frame=frame,
        static={"node_type": data.node_type(traj).astype(np.int32)},
    )  # fmt: skip


def _stored_field(data: FrameSource, traj: str, name: str, t: int, source: str) -> np.ndarray:
    """A stored field with its components (the viewer only needs magnitudes; ParaView wants vectors)."""
    values = data.stored_field(traj, name, t, source)
    return values[:, 0] if values.ndim == 2 and values.shape[1] == 1 else values


def _frame_index(data: FrameSource, traj: str, frame: int) -> int:
    count = data.num_frames(traj)
    if not -count <= frame < count:
        raise ConfigError(f"--frame {frame} out of range: trajectory {traj!r} has frames 0..{count - 1} (or -1 = last)")
    return frame % count


def _write_frame(data: FrameSource, traj: str, source: str, frame: int, color: str | None, fmt: str,
                 out: Path) -> list[Path]:  # fmt: skip
    import trimesh

    t = _frame_index(data, traj, frame)
    points = data.positions(traj, t, source)
    color = color if color is not None else data.info(traj)["default_field"]
    colors = None
    if color and fmt != "obj":
        if source not in data.fields(traj).get(color, ()):
            names = sorted(n for n, s in data.fields(traj).items() if source in s)
            raise ConfigError(f"--color {color!r} has no {source} values in trajectory {traj!r}; use one of {names}")
        colors = colorize(data.field(traj, color, t, source), *data.field_range(traj, color))
    triangles = data.surface(traj)
    if len(triangles):
        # Keep every node (no merging or reordering): vertex i of the file is node i of the trajectory.
        geometry = trimesh.Trimesh(points, triangles, vertex_colors=colors, process=False)
    else:
        geometry = trimesh.PointCloud(points, colors=colors)
    tmp = out.parent / f".{out.name}.{os.getpid()}.tmp"
    try:
        options = {"include_color": False} if fmt == "obj" and len(triangles) else {}
        tmp.write_bytes(_as_bytes(geometry.export(file_type=fmt, **options)))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return [out]


def _as_bytes(exported) -> bytes:
    return exported.encode() if isinstance(exported, str) else bytes(exported)
