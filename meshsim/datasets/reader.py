"""Reader of HDF5 trajectory stores, validating as it goes.

Opening checks the root attributes (`format`, `format_version`); every `read` checks shapes, dtypes, index
ranges, node types, finite values and dt of that trajectory; `frame`/`window` read only the chunks they need and
check those. Whatever is wrong with a file (not HDF5, truncated, edited, random bytes) surfaces as one
`DataFormatError` naming the file, the trajectory and the field, never as another exception.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from meshsim.datasets.schema import CELL_TYPES, FORMAT_ROLLOUT, FORMAT_TRAJECTORIES, FORMAT_VERSION, RESERVED_ATTRS
from meshsim.datasets.trajectory import (
    Trajectory,
    check_dt,
    check_frames,
    check_static,
    check_trajectory,
    require_finite,
)
from meshsim.errors import DataFormatError

# What h5py raises for files and objects it cannot decode (corrupt chunks, odd dtypes, broken links).
_H5_ERRORS = (OSError, ValueError, TypeError, KeyError, RuntimeError, AttributeError, IndexError)


class TrajectoryFile:
    """Read-only view of a trajectory or rollout store; use as a context manager."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataFormatError(f"{self.path}: no such file; pass an existing trajectory file (.h5)")
        self._file = _open_shared(self.path)
        try:
            self._check_root()
        except BaseException:
            self._file.close()
            raise

    # -- whole file ------------------------------------------------------------------------------------------

    @property
    def attrs(self) -> dict[str, Any]:
        return _read_attrs(self._file, str(self.path))

    @property
    def is_rollout(self) -> bool:
        return self._format == FORMAT_ROLLOUT

    @property
    def ids(self) -> list[str]:
        return sorted(_keys(self._trajectories, str(self.path)))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> TrajectoryFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.ids)

    # -- one trajectory --------------------------------------------------------------------------------------

    def read(self, traj_id: str) -> Trajectory:
        """The whole trajectory, fully validated."""
        where, g, layout = self._layout(traj_id)
        arrays = {name: _read(g, name, where) for name in ("cells", "mesh_pos", "node_type", "world_pos")}
        attrs = {k: v for k, v in layout["attrs"].items() if k not in RESERVED_ATTRS}
        traj = Trajectory(
            **arrays,
            dt=layout["dt"],
            fields={n: _read(g, f"fields/{n}", where) for n in layout["fields"]},
            globals={n: _read(g, f"globals/{n}", where) for n in layout["globals"]},
            attrs=attrs,
            pred_world_pos=_read(g, "pred/world_pos", where) if self.is_rollout else None,
            pred_fields={n: _read(g, f"pred/fields/{n}", where) for n in layout["pred_fields"]},
        )
        return check_trajectory(traj, where, rollout=self.is_rollout)

    def num_frames(self, traj_id: str) -> int:
        return self._layout(traj_id)[2]["num_frames"]

    def frame(self, traj_id: str, t: int, source: str = "gt") -> np.ndarray:
        """World positions [N, d] of frame t (one chunk read); source "gt" or "pred" (rollout files)."""
        if source not in ("gt", "pred"):
            raise DataFormatError(f"frame source must be 'gt' or 'pred', got {source!r}")
        if source == "pred" and not self.is_rollout:
            raise DataFormatError(f"{self.path} holds no predictions (not a rollout file); use source='gt'")
        where, g, layout = self._layout(traj_id)
        t = self._check_frame_index(t, layout["num_frames"], where)
        name = "world_pos" if source == "gt" else "pred/world_pos"
        pos = _read(g, name, where, t).astype(np.float32, copy=False)
        require_finite(pos, f"{name}[{t}]", where)
        return pos

    def static(self, traj_id: str) -> dict[str, Any]:
        """Mesh, dt, attrs and the shape summary of a trajectory, validated, without reading any frame."""
        where, g, layout = self._layout(traj_id)
        cells, mesh_pos, node_type = check_static(
            _read(g, "cells", where), _read(g, "mesh_pos", where), _read(g, "node_type", where), where
        )
        attrs = {k: v for k, v in layout["attrs"].items() if k not in RESERVED_ATTRS}
        return {**layout, "cells": cells, "mesh_pos": mesh_pos, "node_type": node_type, "attrs": attrs}

    def window(self, traj_id: str, start: int, stop: int) -> dict[str, np.ndarray]:
        """Frames start..stop-1 of world_pos, fields/<name> and globals/<name>, each checked finite."""
        where, g, layout = self._layout(traj_id)
        if not 0 <= start < stop <= layout["num_frames"]:
            raise DataFormatError(f"{where}: frames {start}..{stop - 1} outside 0..{layout['num_frames'] - 1}")
        sel = slice(start, stop)
        out = {"world_pos": _read(g, "world_pos", where, sel).astype(np.float32, copy=False)}
        require_finite(out["world_pos"], "world_pos", where)
        for name in layout["fields"]:
            out[f"fields/{name}"] = check_frames(_read(g, f"fields/{name}", where, sel), f"fields/{name}",
                                                 stop - start, layout["num_nodes"], where)  # fmt: skip
        for name in layout["globals"]:
            arr = _read(g, f"globals/{name}", where, sel).astype(np.float64, copy=False)
            require_finite(arr, f"globals/{name}", where)
            out[f"globals/{name}"] = arr
        return out

    # -- internals -------------------------------------------------------------------------------------------

    def _check_root(self) -> None:
        attrs = _read_attrs(self._file, str(self.path))
        fmt = attrs.get("format")
        if fmt not in (FORMAT_TRAJECTORIES, FORMAT_ROLLOUT):
            raise DataFormatError(
                f"{self.path}: root attribute 'format' is {fmt!r}, expected {FORMAT_TRAJECTORIES!r} or "
                f"{FORMAT_ROLLOUT!r}; this is not a meshsim trajectory file (convert datasets: `meshsim data import`)"
            )
        version = attrs.get("format_version")
        if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version != FORMAT_VERSION:
            raise DataFormatError(
                f"{self.path}: root attribute 'format_version' is {version!r}, this meshsim reads version "
                f"{FORMAT_VERSION}; convert the file with the meshsim version that wrote it"
            )
        self._format = fmt
        group = _member(self._file, "trajectories", str(self.path))
        if not isinstance(group, h5py.Group):
            raise DataFormatError(f"{self.path}: 'trajectories' must be a group; the file is damaged")
        self._trajectories = group
        self._layouts: dict[str, tuple] = {}

    def _layout(self, traj_id: str) -> tuple[str, h5py.Group, dict[str, Any]]:
        """Check a trajectory's datasets exist with consistent shapes and dtypes (metadata only, cached)."""
        if traj_id in self._layouts:
            return self._layouts[traj_id]
        if not isinstance(traj_id, str) or not _has(self._trajectories, traj_id, str(self.path)):
            shown = ", ".join(self.ids[:5]) + (", ..." if len(self) > 5 else "")
            raise DataFormatError(f"{self.path}: no trajectory {traj_id!r}; the file holds: {shown or 'none'}")
        where = f"{self.path}: trajectory {traj_id!r}"
        g = _member(self._trajectories, traj_id, where)
        if not isinstance(g, h5py.Group):
            raise DataFormatError(f"{where} is not a group; the file is damaged")
        attrs = _read_attrs(g, where)
        if "dt" not in attrs:
            raise DataFormatError(f"{where}: attribute 'dt' is missing; the file is damaged")
        dt = check_dt(attrs["dt"], where)
        mesh_pos = _dataset(g, "mesh_pos", where, "f", 2)
        num_nodes = mesh_pos.shape[0]
        cells = _dataset(g, "cells", where, "iu", 2)
        expected = CELL_TYPES.get(cells.shape[1])
        if attrs.get("cell_type") != expected:
            raise DataFormatError(
                f"{where}: attribute 'cell_type' is {attrs.get('cell_type')!r} but cells have {cells.shape[1]} "
                f"nodes each ({expected or 'unsupported'}); the file is damaged"
            )
        _dataset(g, "node_type", where, "iu", 1, (num_nodes,))
        world = _dataset(g, "world_pos", where, "f", 3)
        if world.shape[0] < 1 or world.shape[1] != num_nodes or not mesh_pos.shape[1] <= world.shape[2] <= 3:
            raise DataFormatError(
                f"{where}: field 'world_pos' has shape {list(world.shape)}, expected [T, {num_nodes}, "
                f"{mesh_pos.shape[1]}] with T >= 1"
            )
        num_frames = world.shape[0]
        layout = {
            "dt": dt,
            "attrs": attrs,
            "cell_type": expected,
            "num_frames": num_frames,
            "num_nodes": num_nodes,
            "num_cells": cells.shape[0],
            "dim": world.shape[2],
            "fields": self._frame_group(g, "fields", where, num_frames, num_nodes),
            "globals": self._frame_group(g, "globals", where, num_frames, None),
            "pred_fields": {},
        }
        if self.is_rollout:
            _dataset(g, "pred/world_pos", where, "f", 3, world.shape)
            layout["pred_fields"] = self._frame_group(g, "pred/fields", where, num_frames, num_nodes)
        self._layouts[traj_id] = (where, g, layout)
        return self._layouts[traj_id]

    @staticmethod
    def _frame_group(g: h5py.Group, name: str, where: str, num_frames: int, num_nodes: int | None) -> dict:
        """name -> shape for the datasets of a group of per-frame arrays (fields: [T, N(, C)]; globals: [T])."""
        if not _has(g, name, where):
            return {}
        group = _member(g, name, where)
        if not isinstance(group, h5py.Group):
            raise DataFormatError(f"{where}: {name!r} must be a group; the file is damaged")
        shapes = {}
        for key in sorted(_keys(group, where)):
            if num_nodes is None:
                ds = _dataset(g, f"{name}/{key}", where, "f", 1, (num_frames,))
            else:
                ds = _dataset(g, f"{name}/{key}", where, "f", None)
                if ds.ndim not in (2, 3) or ds.shape[:2] != (num_frames, num_nodes):
                    raise DataFormatError(
                        f"{where}: field '{name}/{key}' has shape {list(ds.shape)}, expected "
                        f"[{num_frames}, {num_nodes}] or [{num_frames}, {num_nodes}, C]"
                    )
            shapes[key] = tuple(ds.shape)
        return shapes

    def _check_frame_index(self, t: Any, num_frames: int, where: str) -> int:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not -num_frames <= t < num_frames:
            raise DataFormatError(f"{where}: frame {t!r} out of range; the trajectory has {num_frames} frames")
        return int(t) % num_frames


def _open_shared(path: Path, attempts: int = 50) -> h5py.File:
    """Open read-only under HDF5's shared lock, which tells a writer to leave this version untouched.

    The lock can be refused for a moment when a writer is just reusing the version we resolved the name to
    (the name already points to a newer one): retry briefly.
    """
    for attempt in range(attempts):
        try:
            return h5py.File(path, "r")
        except _H5_ERRORS as err:
            if "unable to lock file" in str(err) and attempt < attempts - 1:
                time.sleep(0.02)
                continue
            if "unable to lock file" in str(err):
                raise DataFormatError(
                    f"{path}: locked by a process writing it in place; retry when it has finished"
                ) from None
            raise DataFormatError(
                f"{path}: not a readable HDF5 file ({_first_line(err)}); it may be truncated or of another type"
            ) from None
    raise AssertionError("unreachable")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _member(group: h5py.Group, name: str, where: str):
    try:
        return group[name]
    except _H5_ERRORS as err:
        raise DataFormatError(f"{where}: cannot open {name!r} ({_first_line(err)}); the file is damaged") from None


def _has(group: h5py.Group, name: str, where: str) -> bool:
    try:  # a damaged link table fails here, before any member is opened
        return name in group
    except _H5_ERRORS as err:
        raise DataFormatError(f"{where}: cannot look up {name!r} ({_first_line(err)}); the file is damaged") from None


def _keys(group: h5py.Group, where: str) -> list[str]:
    try:
        return [k if isinstance(k, str) else k.decode("utf-8", "replace") for k in group.keys()]
    except _H5_ERRORS as err:
        raise DataFormatError(f"{where}: cannot list members ({_first_line(err)}); the file is damaged") from None


def _dataset(g: h5py.Group, name: str, where: str, kinds: str, ndim: int | None, shape: tuple | None = None):
    if not _has(g, name, where):
        raise DataFormatError(f"{where}: field {name!r} is missing; the file is incomplete or of another layout")
    ds = _member(g, name, where)
    if not isinstance(ds, h5py.Dataset):
        raise DataFormatError(f"{where}: field {name!r} must be a dataset; the file is damaged")
    try:
        kind, dtype = ds.dtype.kind, str(ds.dtype)
    except _H5_ERRORS:
        kind, dtype = "?", "unreadable"
    if kind not in kinds:
        want = "floating point" if kinds == "f" else "integer"
        raise DataFormatError(f"{where}: field {name!r} has dtype {dtype}, expected {want} values")
    if ds.shape is None or (ndim is not None and len(ds.shape) != ndim) or (shape is not None and ds.shape != shape):
        want = f"{ndim} dimensions" if shape is None else str(list(shape))
        got = None if ds.shape is None else list(ds.shape)
        raise DataFormatError(f"{where}: field {name!r} has shape {got}, expected {want}")
    return ds


def _read(g: h5py.Group, name: str, where: str, sel: Any = ()) -> np.ndarray:
    try:
        return np.asarray(g[name][sel])
    except _H5_ERRORS as err:
        raise DataFormatError(
            f"{where}: field {name!r} cannot be read ({_first_line(err)}); the file is damaged"
        ) from None


def _read_attrs(obj, where: str) -> dict[str, Any]:
    """Attributes as plain Python values (numpy scalars unwrapped, bytes decoded)."""
    out = {}
    try:
        for key in obj.attrs.keys():
            value = obj.attrs[key]
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            elif isinstance(value, np.generic):
                value = value.item()
            out[key if isinstance(key, str) else key.decode("utf-8", "replace")] = value
    except _H5_ERRORS as err:
        raise DataFormatError(f"{where}: attributes cannot be read ({_first_line(err)}); the file is damaged") from None
    return out
