"""Atomic, resumable writer of HDF5 trajectory stores.

Every `write` copies the current store to a temporary file in the same folder, appends the trajectory there,
flushes and fsyncs it, then renames it over the store (`os.replace` is atomic on POSIX). So the file at `path` is
at every instant a complete, closed HDF5 file holding every trajectory whose `write` returned, whatever kills
the process and when. The price is one copy of the store per write (O(file size), measured in
docs/data-format.md). Bulk producers wrap many writes in `with writer.batch():` to pay one copy per batch; the
batch becomes visible all at once when the block ends (a crash inside it loses only that batch).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from meshsim import __version__
from meshsim.datasets.reader import TrajectoryFile
from meshsim.datasets.schema import FORMAT_ROLLOUT, FORMAT_TRAJECTORIES, FORMAT_VERSION, UNITS
from meshsim.datasets.trajectory import Trajectory, check_attrs, check_name, check_trajectory
from meshsim.errors import OutputError


class TrajectoryWriter:
    """Create a store or resume one: `ids` lists the trajectories already in it.

    compression: None (default, fastest) or "gzip"/"lzf" for the per-frame datasets.
    durable: fsync file and folder on every write (survives power loss, not only a killed process).
    attrs: root attributes recorded when the file is created (e.g. the source of an imported dataset).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        rollout: bool = False,
        *,
        compression: str | None = None,
        durable: bool = True,
        attrs: dict[str, Any] | None = None,
    ):
        self.path = Path(path)
        self.rollout = bool(rollout)
        if compression not in (None, "gzip", "lzf"):
            raise OutputError(f"compression {compression!r} is not supported; use None, 'gzip' or 'lzf'")
        self.compression = compression
        self.durable = durable
        folder = self.path.parent
        if not folder.is_dir():
            raise OutputError(f"cannot write {self.path}: folder {folder} does not exist; create it first")
        if not os.access(folder, os.W_OK):
            raise OutputError(f"cannot write {self.path}: folder {folder} is not writable")
        self._batch: tuple[h5py.File, list[str]] | None = None
        self._remove_stale_temporaries()
        if self.path.exists():
            self._ids = self._resume()
        else:
            self._create(check_attrs(dict(attrs or {}), str(self.path)))
            self._ids = []

    @property
    def ids(self) -> list[str]:
        """Ids of the finished trajectories in the store (resumed ones included)."""
        return list(self._ids)

    def write(self, traj_id: str, traj: Trajectory) -> None:
        """Validate `traj`, then add it atomically. Ids must be new (zero-padded ids keep files sorted)."""
        where = f"{self.path}: trajectory {traj_id!r}"
        check_name(traj_id, "trajectory id", str(self.path))
        if traj_id in self._ids:
            raise OutputError(f"{where} is already in the store; skip ids listed in writer.ids or pick a new id")
        if self._batch is not None and traj_id in self._batch[1]:
            raise OutputError(f"{where} was already written in this batch; pick a new id")
        traj = check_trajectory(traj, where, rollout=self.rollout)
        if self._batch is not None:
            self._write_group(self._batch[0], traj_id, traj)
            self._batch[1].append(traj_id)
            return
        with self._staged(copy=True) as f:
            self._write_group(f, traj_id, traj)
        self._ids.append(traj_id)

    def _write_group(self, f: h5py.File, traj_id: str, traj: Trajectory) -> None:
        try:
            _write_group(f, traj_id, traj, self.compression)
        except OSError as err:  # disk full, quota: the store itself is untouched
            raise self._write_error(err) from None

    @contextlib.contextmanager
    def batch(self):
        """Group writes into one atomic commit (one copy of the store instead of one per trajectory)."""
        if self._batch is not None:
            raise OutputError(f"{self.path}: batches do not nest; finish the open batch first")
        with self._staged(copy=True) as f:
            self._batch = (f, [])
            try:
                yield self
                pending = self._batch[1]
            finally:
                self._batch = None
        self._ids.extend(pending)

    @property
    def pending(self) -> list[str]:
        """Ids written in the open batch, not yet committed."""
        return list(self._batch[1]) if self._batch else []

    def close(self) -> None:
        """Nothing is buffered outside a batch: every write is already on disk. Kept for `with` blocks."""

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------------------

    def _create(self, attrs: dict[str, Any]) -> None:
        def init(f: h5py.File) -> None:
            f.attrs["format"] = FORMAT_ROLLOUT if self.rollout else FORMAT_TRAJECTORIES
            f.attrs["format_version"] = FORMAT_VERSION
            for key, value in UNITS.items():
                f.attrs[key] = value
            f.attrs["creator"] = f"meshsim {__version__}"
            for key, value in attrs.items():
                f.attrs[key] = value
            f.create_group("trajectories")

        with self._staged(copy=False) as f:
            init(f)

    def _resume(self) -> list[str]:
        with TrajectoryFile(self.path) as existing:
            if existing.is_rollout != self.rollout:
                kind = "rollout" if existing.is_rollout else "trajectory"
                raise OutputError(
                    f"{self.path} is a {kind} store; open it with rollout={existing.is_rollout} or write elsewhere"
                )
            return existing.ids

    @contextlib.contextmanager
    def _staged(self, copy: bool):
        """Yield a private copy of the store to change; on success swap it in with one atomic rename."""
        tmp = self.path.parent / f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            try:
                if copy:
                    shutil.copyfile(self.path, tmp)
                f = h5py.File(tmp, "r+" if copy else "w-", libver=("earliest", "latest"))
            except OSError as err:
                raise self._write_error(err) from None
            try:
                yield f
            finally:
                f.close()
            try:
                if self.durable:
                    _fsync_path(tmp)
                os.replace(tmp, self.path)
                if self.durable:
                    _fsync_path(self.path.parent)
            except OSError as err:
                raise self._write_error(err) from None
        finally:
            tmp.unlink(missing_ok=True)

    def _write_error(self, err: OSError) -> OutputError:
        return OutputError(f"cannot write {self.path}: {err.strerror or err}; check free space and permissions")

    def _remove_stale_temporaries(self) -> None:
        """Temporaries of writers that were killed (their process is gone) are garbage: remove them."""
        for tmp in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            parts = tmp.name[len(self.path.name) + 2 :].split(".")
            if parts and parts[0].isdigit() and not _process_alive(int(parts[0])):
                tmp.unlink(missing_ok=True)


def _write_group(f: h5py.File, traj_id: str, traj: Trajectory, compression: str | None) -> None:
    g = f["trajectories"].create_group(traj_id)
    g.attrs["dt"] = traj.dt
    g.attrs["cell_type"] = traj.cell_type
    for key, value in traj.attrs.items():
        g.attrs[key] = value
    g.create_dataset("cells", data=traj.cells)
    g.create_dataset("mesh_pos", data=traj.mesh_pos)
    g.create_dataset("node_type", data=traj.node_type)
    _write_frames(g, "world_pos", traj.world_pos, compression)
    fields = g.create_group("fields")
    for name, arr in traj.fields.items():
        _write_frames(fields, name, arr, compression)
    globals_ = g.create_group("globals")
    for name, arr in traj.globals.items():
        globals_.create_dataset(name, data=arr)
    if traj.pred_world_pos is not None:
        pred = g.create_group("pred")
        _write_frames(pred, "world_pos", traj.pred_world_pos, compression)
        pred_fields = pred.create_group("fields")
        for name, arr in traj.pred_fields.items():
            _write_frames(pred_fields, name, arr, compression)


def _write_frames(group: h5py.Group, name: str, arr: np.ndarray, compression: str | None) -> None:
    """One frame per chunk: a frame (what training windows and the viewer read) is one contiguous read."""
    group.create_dataset(name, data=arr, chunks=(1, *arr.shape[1:]), compression=compression)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
