"""One simulated trajectory in memory, and the checks every trajectory passes before it is written or used.

The same checks run in the writer (before anything touches the disk) and in the reader (on every trajectory
read), so a store can only ever hold trajectories that a consumer accepts. Messages name the place (file and
trajectory, handed in as `where`), the field and the fix.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from meshsim.datasets.schema import CELL_TYPES, RESERVED_ATTRS, NodeType
from meshsim.errors import DataFormatError

MAX_ATTR_ARRAY = 4096  # attrs hold small parameter vectors, not data


@dataclasses.dataclass
class Trajectory:
    cells: np.ndarray  # [M, k] int32; k = 3 triangles, 4 tetrahedra, 1 particles
    mesh_pos: np.ndarray  # [N, d] float32 reference configuration
    node_type: np.ndarray  # [N] int32 NodeType values
    world_pos: np.ndarray  # [T, N, d] float32
    dt: float  # seconds between stored frames
    fields: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # [T, N] or [T, N, C] float32
    globals: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # [T] float64
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)  # scenario parameters, material
    pred_world_pos: np.ndarray | None = None  # rollout files only: [T, N, d]
    pred_fields: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # rollout files only

    @property
    def num_frames(self) -> int:
        return int(self.world_pos.shape[0])

    @property
    def num_nodes(self) -> int:
        return int(self.mesh_pos.shape[0])

    @property
    def num_cells(self) -> int:
        return int(self.cells.shape[0])

    @property
    def cell_type(self) -> str:
        return CELL_TYPES.get(int(self.cells.shape[1]), "unknown")


def check_name(name: Any, what: str, where: str) -> str:
    """Trajectory ids and field names become HDF5 path components: plain, non-empty, no '/'."""
    if not isinstance(name, str) or not name or "/" in name or name.startswith(".") or not name.isprintable():
        raise DataFormatError(f"{where}: {what} {name!r} is not a valid name; use letters, digits, '_' or '-'")
    return name


def as_float(value: Any, name: str, where: str, dtype=np.float32) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind != "f":
        raise DataFormatError(f"{where}: field {name!r} has dtype {arr.dtype}, expected floating point values")
    return arr.astype(dtype, copy=False)


def as_int(value: Any, name: str, where: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise DataFormatError(f"{where}: field {name!r} has dtype {arr.dtype}, expected integers")
    if arr.size and (arr.min() < np.iinfo(np.int32).min or arr.max() > np.iinfo(np.int32).max):
        raise DataFormatError(f"{where}: field {name!r} holds values outside the int32 range")
    return arr.astype(np.int32, copy=False)


def require_shape(arr: np.ndarray, expected: tuple, name: str, where: str) -> None:
    """`expected` holds ints, or None for any size; the number of dimensions must match."""
    ok = arr.ndim == len(expected) and all(e is None or e == s for e, s in zip(expected, arr.shape))
    if not ok:
        want = "[" + ", ".join("*" if e is None else str(e) for e in expected) + "]"
        raise DataFormatError(f"{where}: field {name!r} has shape {list(arr.shape)}, expected {want}")


def require_finite(arr: np.ndarray, name: str, where: str) -> None:
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0].tolist()
        raise DataFormatError(f"{where}: field {name!r} holds a non-finite value (NaN or inf) at index {bad}")


def check_dt(dt: Any, where: str) -> float:
    try:
        value = float(dt)
    except (TypeError, ValueError):
        raise DataFormatError(f"{where}: attribute 'dt' = {dt!r} is not a number; store seconds per frame") from None
    if not np.isfinite(value) or value <= 0:
        raise DataFormatError(f"{where}: attribute 'dt' = {value!r} must be a finite time step > 0 (seconds)")
    return value


def check_static(cells: Any, mesh_pos: Any, node_type: Any, where: str) -> tuple[np.ndarray, ...]:
    """Mesh part of a trajectory: shapes, dtypes, index ranges, node types, finite positions."""
    mesh_pos = as_float(mesh_pos, "mesh_pos", where)
    if mesh_pos.ndim != 2 or mesh_pos.shape[1] not in (2, 3) or mesh_pos.shape[0] < 1:
        raise DataFormatError(f"{where}: field 'mesh_pos' has shape {list(mesh_pos.shape)}, expected [N, 2] or [N, 3]")
    require_finite(mesh_pos, "mesh_pos", where)
    num_nodes = mesh_pos.shape[0]
    cells = as_int(cells, "cells", where)
    if cells.ndim != 2 or cells.shape[1] not in CELL_TYPES or cells.shape[0] < 1:
        raise DataFormatError(
            f"{where}: field 'cells' has shape {list(cells.shape)}, expected [M, k] with M >= 1 and k in "
            f"{sorted(CELL_TYPES)} (particles, triangles, tetrahedra)"
        )
    if cells.min() < 0 or cells.max() >= num_nodes:
        bad = int(np.argmax((cells < 0).any(1) | (cells >= num_nodes).any(1)))
        raise DataFormatError(
            f"{where}: field 'cells' row {bad} = {cells[bad].tolist()} indexes outside the {num_nodes} nodes"
        )
    node_type = as_int(node_type, "node_type", where)
    require_shape(node_type, (num_nodes,), "node_type", where)
    if node_type.min() < 0 or node_type.max() >= NodeType.SIZE:
        bad = int(np.argmax((node_type < 0) | (node_type >= NodeType.SIZE)))
        raise DataFormatError(
            f"{where}: field 'node_type' of node {bad} is {int(node_type[bad])}, expected 0..{NodeType.SIZE - 1}"
        )
    return cells, mesh_pos, node_type


def check_frames(arr: Any, name: str, num_frames: int | None, num_nodes: int, where: str, width: int | None = None):
    """A per-frame node array [T, N] or [T, N, C] (width=None) or [T, N, width]; float32, finite."""
    arr = as_float(arr, name, where)
    if width is not None:
        require_shape(arr, (num_frames, num_nodes, width), name, where)
    elif arr.ndim not in (2, 3) or arr.shape[1] != num_nodes or (num_frames is not None and arr.shape[0] != num_frames):
        t = "T" if num_frames is None else num_frames
        raise DataFormatError(
            f"{where}: field {name!r} has shape {list(arr.shape)}, expected [{t}, {num_nodes}] or [{t}, {num_nodes}, C]"
        )
    require_finite(arr, name, where)
    return arr


def check_attrs(attrs: Any, where: str) -> dict[str, Any]:
    if not isinstance(attrs, dict):
        raise DataFormatError(f"{where}: attrs must be a dict of name -> value, got {type(attrs).__name__}")
    out = {}
    for key, value in attrs.items():
        check_name(key, "attribute", where)
        if key in RESERVED_ATTRS:
            raise DataFormatError(f"{where}: attribute {key!r} is reserved by the store; rename it")
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, (bool, int, float, str)):
            out[key] = value
            continue
        arr = np.asarray(value) if isinstance(value, (list, tuple, np.ndarray)) else None
        if arr is None or arr.ndim != 1 or arr.dtype.kind not in "biuf" or arr.size > MAX_ATTR_ARRAY:
            raise DataFormatError(
                f"{where}: attribute {key!r} = {value!r:.60} must be a str, int, float, bool or small 1-D number array"
            )
        out[key] = arr
    return out


def check_trajectory(traj: Trajectory, where: str, rollout: bool | None = None) -> Trajectory:
    """Return `traj` with canonical dtypes after checking everything; DataFormatError naming the field otherwise.

    rollout=True requires the predictions of a rollout file, False forbids them, None accepts either.
    """
    if not isinstance(traj, Trajectory):
        raise DataFormatError(f"{where}: expected a Trajectory, got {type(traj).__name__}")
    cells, mesh_pos, node_type = check_static(traj.cells, traj.mesh_pos, traj.node_type, where)
    num_nodes = mesh_pos.shape[0]
    world_pos = as_float(traj.world_pos, "world_pos", where)
    if world_pos.ndim != 3 or world_pos.shape[0] < 1 or world_pos.shape[1] != num_nodes:
        raise DataFormatError(
            f"{where}: field 'world_pos' has shape {list(world_pos.shape)}, expected [T, {num_nodes}, d] with T >= 1"
        )
    if world_pos.shape[2] < mesh_pos.shape[1] or world_pos.shape[2] > 3:
        raise DataFormatError(
            f"{where}: field 'world_pos' has {world_pos.shape[2]} components per node but mesh_pos has "
            f"{mesh_pos.shape[1]}; world_pos needs as many (2 or 3)"
        )
    require_finite(world_pos, "world_pos", where)
    num_frames = world_pos.shape[0]
    dt = check_dt(traj.dt, where)
    fields = _check_field_dict(traj.fields, "fields", num_frames, num_nodes, where)
    if not isinstance(traj.globals, dict):
        raise DataFormatError(f"{where}: globals must be a dict of name -> [T] array")
    globals_ = {}
    for name, value in traj.globals.items():
        check_name(name, "global", where)
        arr = as_float(value, f"globals/{name}", where, dtype=np.float64)
        require_shape(arr, (num_frames,), f"globals/{name}", where)
        require_finite(arr, f"globals/{name}", where)
        globals_[name] = arr
    attrs = check_attrs(traj.attrs, where)
    has_pred = traj.pred_world_pos is not None or bool(traj.pred_fields)
    if rollout is False and has_pred:
        raise DataFormatError(f"{where}: predictions (pred_world_pos/pred_fields) belong in a rollout file only")
    pred_world_pos, pred_fields = None, {}
    if rollout or has_pred:
        if traj.pred_world_pos is None:
            raise DataFormatError(f"{where}: field 'pred/world_pos' is missing; a rollout file stores predictions")
        pred_world_pos = as_float(traj.pred_world_pos, "pred/world_pos", where)
        require_shape(pred_world_pos, world_pos.shape, "pred/world_pos", where)
        require_finite(pred_world_pos, "pred/world_pos", where)
        pred_fields = _check_field_dict(traj.pred_fields, "pred/fields", num_frames, num_nodes, where)
    return Trajectory(
        cells=cells, mesh_pos=mesh_pos, node_type=node_type, world_pos=world_pos, dt=dt, fields=fields,
        globals=globals_, attrs=attrs, pred_world_pos=pred_world_pos, pred_fields=pred_fields,
    )  # fmt: skip


def _check_field_dict(fields: Any, prefix: str, num_frames: int, num_nodes: int, where: str) -> dict:
    if not isinstance(fields, dict):
        raise DataFormatError(f"{where}: {prefix} must be a dict of name -> [T, N(, C)] array")
    out = {}
    for name, value in fields.items():
        check_name(name, "field", where)
        out[name] = check_frames(value, f"{prefix}/{name}", num_frames, num_nodes, where)
    return out
