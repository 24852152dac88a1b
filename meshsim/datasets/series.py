"""Import time series exported by any FEM code (VTU/PVD, XDMF, VTKHDF) into a new HDF5 trajectory store.

    import_series(["run1.pvd", "run2/"], "own.h5", displacement="U", fields=["stress=S_Mises*1e6"],
                  node_types=["HANDLE:x<=0"], obstacle="punch.stl")

One trajectory per source (`series_sources.open_series`). Per source:
- `world_pos`: the frame's points; or, with a displacement field (`displacement=`, by default a point array named
  `displacement` when there is one), points + displacement when the points stay where they are (mesh stored
  undeformed), else the points themselves with `mesh_pos` = points - displacement of frame 0;
- `mesh_pos`: the reference mesh (frame 0 unless a displacement field says otherwise); an all-zero z makes it 2-D;
- `dt`: from the time values (uniform steps required: a gap is a missing frame) or `dt=` (files without times);
- `fields/<name>`: every floating point array of the points (all frames), or only those named by `fields`
  (`new=old`, `new=old*scale` for units); `node_type` by rules (`node_rules`), `obstacle` appends a static mesh;
- cells: one kind per trajectory (triangle, tetra or vertex), the same in every frame.

Trajectories go one at a time into a private store beside `output` (one atomic batch), which is linked into place
when every source is in: bad input leaves nothing behind (one DataFormatError/ConfigError line, exit code 2 on
the CLI), and only one trajectory is in memory at a time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from meshsim.datasets.node_rules import apply_rules, parse_rule
from meshsim.datasets.schema import NodeType
from meshsim.datasets.series_sources import FRAME_SUFFIXES, open_series
from meshsim.datasets.trajectory import Trajectory, check_trajectory
from meshsim.datasets.writer import TrajectoryWriter
from meshsim.errors import ConfigError, DataFormatError, OutputError
from meshsim.outputs import fsync_path, remove_dead_temporaries

CELL_KINDS = {"triangle": 3, "tetra": 4, "vertex": 1}
_FIELD = re.compile(r"^\s*([^=\s]+)\s*=\s*(.+?)\s*(?:\*\s*([-+0-9.eE]+))?\s*$")


def parse_field(text: str) -> tuple[str, str, float]:
    """`new=old`, `new=old*scale` or `name` -> (new, old, scale)."""
    if "=" not in text:
        return text.strip(), text.strip(), 1.0
    match = _FIELD.match(text)
    if not match:
        raise ConfigError(f"--field {text!r}: use NEW=OLD or NEW=OLD*SCALE (e.g. stress=S_Mises*1e6)")
    try:
        scale = float(match.group(3)) if match.group(3) else 1.0
    except ValueError:
        raise ConfigError(f"--field {text!r}: scale {match.group(3)!r} is not a number") from None
    if not np.isfinite(scale) or scale == 0:
        raise ConfigError(f"--field {text!r}: the scale must be a finite non-zero number")
    return match.group(1), match.group(2), scale


def group_sources(sources: list[str | os.PathLike]) -> list[Any]:
    """Command-line sources -> one entry per trajectory: consecutive .vtu/.vtk files (a shell-expanded glob) form
    one trajectory together; a .pvd, .xdmf, .vtkhdf, folder or quoted glob pattern is one trajectory each."""
    groups: list[Any] = []
    for source in sources:
        is_frame = Path(source).suffix.lower() in FRAME_SUFFIXES and not any(c in str(source) for c in "*?[")
        if is_frame and groups and isinstance(groups[-1], list):
            groups[-1].append(source)
        else:
            groups.append([source] if is_frame else source)
    return groups


def import_series(
    sources: list[str | os.PathLike],
    output: str | os.PathLike,
    dt: float | None = None,
    displacement: str | None = None,
    fields: list[str] | None = None,
    node_types: list[str] | None = None,
    obstacle: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Read every source (one trajectory each, see `group_sources`), then write them to the new store `output`."""
    output = Path(output)
    if not sources:
        raise ConfigError("import-series needs at least one source (.pvd, .xdmf, .vtkhdf, folder or .vtu files)")
    if output.exists():
        raise OutputError(f"{output} exists; import-series writes a new store: choose another -o or remove it")
    if not output.parent.is_dir():
        raise OutputError(f"cannot write {output}: folder {output.parent} does not exist; create it first")
    if not os.access(output.parent, os.W_OK):
        raise OutputError(f"cannot write {output}: folder {output.parent} is not writable")
    if dt is not None and (not np.isfinite(dt) or dt <= 0):
        raise ConfigError(f"--dt must be a positive number of seconds, got {dt}")
    renames = [parse_field(f) for f in fields or []]
    rules = [parse_rule(r) for r in node_types or []]
    extra = _read_obstacle(obstacle) if obstacle is not None else None
    rows, notes = [], []
    root_attrs = {"source": "time-series", "source_files": " ".join(str(s) for s in sources)[:4000]}
    # A private store beside OUT, linked into place when every source is in: one trajectory in memory at a time,
    # and OUT never exists half-made. A killed import leaves `.OUT.<pid>.series.tmp`; the next import to OUT
    # removes it.
    _remove_dead_imports(output)
    tmp = output.parent / f".{output.name}.{os.getpid()}.series.tmp"
    try:
        with TrajectoryWriter(tmp, attrs=root_attrs) as writer, writer.batch():
            for index, source in enumerate(group_sources(sources)):
                traj, note = read_series(source, dt=dt, displacement=displacement, renames=renames, rules=rules)
                if extra is not None:
                    traj = _add_obstacle(traj, extra, str(obstacle))
                traj = check_trajectory(traj, str(source[0] if isinstance(source, list) else source))
                writer.write(f"{index:05d}", traj)
                notes += note
                rows.append({"id": f"{index:05d}", "frames": traj.num_frames, "nodes": traj.num_nodes,
                             "dt": traj.dt, "cell_type": traj.cell_type, "fields": sorted(traj.fields),
                             "node_types": _count_types(np.asarray(traj.node_type))})  # fmt: skip
        try:
            os.link(tmp, output)  # fails if OUT appeared meanwhile: never overwrite
        except FileExistsError:
            raise OutputError(f"{output} appeared during the import; the import was not saved") from None
        except OSError:  # no hard links on this file system
            if output.exists():
                raise OutputError(f"{output} appeared during the import; the import was not saved") from None
            os.replace(tmp, output)
        fsync_path(output.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return {"output": str(output), "imported": len(rows), "notes": sorted(set(notes)), "trajectories": rows}


def read_series(
    source,
    dt: float | None = None,
    displacement: str | None = None,
    renames: list[tuple[str, str, float]] = (),
    rules: list = (),
) -> tuple[Trajectory, list[str]]:
    """One source -> (Trajectory, notes). Raises DataFormatError/ConfigError naming the source and frame."""
    seq = open_series(source)
    label, count = seq.label, len(seq.frames)
    step = _resolve_dt(seq.times, dt, label)
    first = seq.read(0)
    kind, cells = _one_kind(first.cells, seq.frames[0])
    num_nodes = len(first.points)
    point_data0 = {k: np.asarray(v) for k, v in first.point_data.items()}
    if displacement is None and "displacement" in point_data0:
        displacement = "displacement"
    rules = list(rules) or ([parse_rule("node_type")] if "node_type" in point_data0 else [])
    used = {r.array for r in rules if r.array} | {displacement}
    if renames:
        wanted = renames
    else:
        wanted = [(n, n, 1.0) for n, v in point_data0.items() if n not in used and v.dtype.kind == "f"]
    for new, old, _ in wanted:
        if old not in point_data0:
            raise DataFormatError(
                f"{seq.frames[0]}: --field {new}={old}: no point array {old!r}; the file has: "
                f"{', '.join(sorted(point_data0)) or 'none'}"
            )  # fmt: skip
    if displacement is not None and displacement not in point_data0:
        raise DataFormatError(f"{seq.frames[0]}: --displacement {displacement!r}: no such point array; the file has: "
                              f"{', '.join(sorted(point_data0)) or 'none'}")  # fmt: skip
    points = np.empty((count, num_nodes, 3), np.float32)
    disp = np.zeros((count, num_nodes, 3), np.float32) if displacement else None
    out_fields = {new: None for new, _, _ in wanted}
    for t in range(count):
        frame = first if t == 0 else seq.read(t)
        where = seq.frames[t]
        if len(frame.points) != num_nodes:
            raise DataFormatError(f"{where}: {len(frame.points)} nodes, frame 0 has {num_nodes}; the node count "
                                  "must stay the same in every frame (remeshed series are not supported)")  # fmt: skip
        if t and not _same_cells(frame.cells, kind, cells):
            raise DataFormatError(f"{where}: the cells differ from frame 0; meshsim needs one mesh for all frames")
        points[t] = _finite(_pad3(frame.points), "points", where)
        if disp is not None:
            disp[t] = _finite(_pad3(_array(frame, displacement, num_nodes, where)), displacement, where)
        for new, old, scale in wanted:
            values = _finite(_array(frame, old, num_nodes, where), old, where)
            if out_fields[new] is None:
                out_fields[new] = np.empty((count, *values.shape), np.float32)
            elif values.shape != out_fields[new].shape[1:]:
                raise DataFormatError(f"{where}: point array {old!r} has shape {list(values.shape)}, "
                                      f"frame 0 has {list(out_fields[new].shape[1:])}")  # fmt: skip
            out_fields[new][t] = values * scale if scale != 1.0 else values
    mesh_pos, world_pos = _positions(points, disp)
    moving = world_pos is points
    dim = 2 if not mesh_pos[:, 2].any() and not world_pos[..., 2].any() else 3
    mesh_pos = mesh_pos[:, :dim]
    world_pos = world_pos[..., :dim] if dim == 2 else world_pos
    node_type = apply_rules(rules, mesh_pos, point_data0, _cell_masks(first, num_nodes), label)
    out_fields = {_safe_name(n): (v[..., 0] if v.ndim == 3 and v.shape[2] == 1 else v) for n, v in out_fields.items()}
    notes = []
    if disp is not None:
        moved = "points, mesh_pos = points - " if moving else "points + "
        notes.append(f"{label}: world_pos = {moved}{displacement!r}" + (" of frame 0" if "mesh" in moved else ""))
    skipped = [n for n, v in point_data0.items() if n not in used and v.dtype.kind != "f" and not renames]
    if skipped:
        notes.append(f"{label}: integer point array(s) {', '.join(skipped)} not kept (use --field to keep them)")
    traj = Trajectory(
        cells=cells.astype(np.int32),
        mesh_pos=mesh_pos,
        node_type=node_type,
        world_pos=world_pos,
        dt=step,
        fields=out_fields,
        attrs={"source_file": str(label)[:1000], "cell_kind": kind},
    )
    return traj, notes


def _resolve_dt(times: np.ndarray | None, dt: float | None, label: str) -> float:
    if times is None or len(times) < 2:
        if dt is None:
            what = "carry no time values" if times is None else "hold a single frame"
            raise ConfigError(f"{label}: the files {what}; pass --dt SECONDS (the time between frames)")
        return float(dt)
    steps = np.diff(times)
    if (steps <= 0).any():
        i = int(np.argmax(steps <= 0))
        raise DataFormatError(
            f"{label}: time values do not increase at frame {i + 1} ({times[i]:g} -> {times[i + 1]:g})"
        )
    median = float(np.median(steps))
    if not np.allclose(steps, median, rtol=1e-4, atol=0):
        i = int(np.argmax(~np.isclose(steps, median, rtol=1e-4, atol=0)))
        raise DataFormatError(
            f"{label}: time steps are not uniform ({times[i]:g} -> {times[i + 1]:g} at frame {i + 1}, "
            f"{median:g} elsewhere): a frame is missing or the output interval varies"
        )  # fmt: skip
    mean = float(times[-1] - times[0]) / (len(times) - 1)
    if dt is not None and not np.isclose(dt, mean, rtol=1e-4, atol=0):
        raise ConfigError(f"--dt {dt} contradicts the time values of {label} (dt = {mean:g}); drop --dt")
    return mean


def _one_kind(blocks, where: str) -> tuple[str, np.ndarray]:
    counts: dict[str, int] = {}
    for block in blocks:
        counts[block.type] = counts.get(block.type, 0) + len(block.data)
    counts = {k: v for k, v in counts.items() if v}
    if len(counts) != 1 or next(iter(counts)) not in CELL_KINDS:
        found = ", ".join(f"{k}: {v}" for k, v in counts.items()) or "none"
        raise DataFormatError(f"{where}: cells of kind(s) {found}; meshsim needs one kind per trajectory, one of "
                              "triangle, tetra or vertex (convert or split the others before export)")  # fmt: skip
    kind = next(iter(counts))
    return kind, np.concatenate([np.asarray(b.data) for b in blocks if b.type == kind]).astype(np.int64)


def _same_cells(blocks, kind: str, cells: np.ndarray) -> bool:
    data = [np.asarray(b.data) for b in blocks if len(b.data)]
    if any(b.type != kind for b in blocks if len(b.data)):
        return False
    return sum(len(d) for d in data) == len(cells) and np.array_equal(np.concatenate(data), cells)


def _array(frame, name: str, num_nodes: int, where: str) -> np.ndarray:
    if name not in frame.point_data:
        raise DataFormatError(f"{where}: point array {name!r} is missing from this frame (frame 0 has it)")
    values = np.asarray(frame.point_data[name])
    if values.shape[:1] != (num_nodes,) or values.ndim > 2 or values.dtype.kind not in "fiu":
        raise DataFormatError(f"{where}: point array {name!r} has shape {list(values.shape)} ({values.dtype}), "
                              f"expected [{num_nodes}] or [{num_nodes}, C] numbers")  # fmt: skip
    return values


def _finite(values: np.ndarray, name: str, where: str) -> np.ndarray:
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        bad = np.argwhere(~np.isfinite(values))[0].tolist()
        raise DataFormatError(f"{where}: {name!r} holds NaN or inf at node {bad[0]}; fix or drop this frame")
    return values


def _pad3(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values).reshape(len(values), -1)
    if values.shape[1] > 3:
        raise DataFormatError(f"vectors with {values.shape[1]} components cannot be positions")
    return values if values.shape[1] == 3 else np.pad(values, ((0, 0), (0, 3 - values.shape[1])))


def _positions(points: np.ndarray, disp: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(mesh_pos [N, 3], world_pos [T, N, 3]): see the module docstring."""
    if disp is None:
        return points[0].copy(), points
    if all(np.array_equal(points[0], p) for p in points[1:]):  # stored undeformed: move by the displacement
        return points[0].copy(), (points.astype(np.float64) + disp).astype(np.float32)
    return (points[0].astype(np.float64) - disp[0]).astype(np.float32), points


def _cell_masks(frame, num_nodes: int) -> dict[str, np.ndarray]:
    """Nodes of every cell set and of the cells where a cell array is non-zero."""
    masks = {}
    blocks = [np.asarray(b.data) for b in frame.cells]
    for name, per_block in {**frame.cell_data, **frame.cell_sets}.items():
        mask = np.zeros(num_nodes, bool)
        for cells, values in zip(blocks, per_block):
            values = np.asarray(values)
            if name in frame.cell_sets:
                rows = values.astype(np.int64) if values.dtype.kind in "iu" else np.zeros(0, np.int64)
            else:
                rows = np.flatnonzero(values.reshape(len(cells), -1).any(axis=1)) if len(values) == len(cells) else []
            mask[cells[rows].ravel()] = True
        masks[name] = mask
    return masks


def _read_obstacle(path) -> Any:
    from meshsim.mesh import read_mesh

    return read_mesh(path)


def _add_obstacle(traj: Trajectory, mesh, label: str) -> Trajectory:
    """Append a static obstacle mesh (nodes OBSTACLE, its cells of the same kind; fields zero there)."""
    if mesh.cell_type != traj.cell_type:
        raise DataFormatError(f"{label}: obstacle cells are {mesh.cell_type}, the series has {traj.cell_type}; "
                              "one cell kind per trajectory (export the obstacle with the same kind)")  # fmt: skip
    dim = traj.mesh_pos.shape[1]
    pos = np.asarray(mesh.points, np.float32)
    if pos.shape[1] != dim:
        raise DataFormatError(f"{label}: obstacle is {pos.shape[1]}-D, the series is {dim}-D")
    n, k = traj.num_nodes, len(pos)
    frames = traj.num_frames
    world = np.concatenate([traj.world_pos, np.broadcast_to(pos, (frames, k, dim))], axis=1)
    fields = {name: np.concatenate([v, np.zeros((frames, k, *v.shape[2:]), np.float32)], axis=1)
              for name, v in traj.fields.items()}  # fmt: skip
    return Trajectory(
        cells=np.concatenate([traj.cells, np.asarray(mesh.cells, np.int32) + n]),
        mesh_pos=np.concatenate([traj.mesh_pos, pos]),
        node_type=np.concatenate([traj.node_type, np.full(k, NodeType.OBSTACLE, np.int32)]),
        world_pos=world,
        dt=traj.dt,
        fields=fields,
        attrs={**traj.attrs, "obstacle_file": label},
    )


def _remove_dead_imports(output: Path) -> None:
    """Private stores of imports to `output` whose process is gone (killed) are garbage."""
    remove_dead_temporaries(output.parent, f".{output.name}.", ".series.tmp")


def _safe_name(name: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "field"
    return clean


def _count_types(node_type: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(node_type, return_counts=True)
    return {NodeType(int(v)).name: int(c) for v, c in zip(values, counts)}
