"""Atomic, resumable writer of HDF5 trajectory stores.

The store at `path` is never modified in place. A write changes a private copy (the "swap" file, in the same
folder), closes and fsyncs it, then renames it over the store (`os.replace` is atomic on POSIX). So `path` is at
every instant a complete, closed HDF5 file holding every trajectory whose `write` returned, whatever kills the
process and when.

Double buffering keeps a write O(trajectory) instead of O(store): before the rename, the old store is hard-linked
to the swap name, so the next write finds the previous version there and only has to add the last trajectory
and the new one (copied group by group) instead of copying the whole store. The swap is reused only by the
writer that closed it, and only if no reader has it open (readers hold HDF5's shared file lock; we try an
exclusive one and fall back to a fresh full copy). Bulk producers may wrap writes in `with writer.batch():`,
committed atomically when the block ends (an error inside it discards that batch only).
"""

from __future__ import annotations

import contextlib
import fcntl
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
from meshsim.outputs import fsync_path, output_folder, remove_dead_temporaries


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
        output_folder(self.path)
        self._writer_lock = self._lock_store()
        self._batch: tuple[h5py.File, list[str]] | None = None
        self._swap: Path | None = None  # previous version of the store, ours to change (see module docs)
        self._swap_ids: list[str] = []
        self.full_copies = 0  # how often a write had to copy the whole store (1 per session when all goes well)
        try:
            self._remove_stale_temporaries()
            if self.path.exists():
                self._ids = self._resume()
            else:
                self._create(check_attrs(dict(attrs or {}), str(self.path)))
                self._ids = []
        except BaseException:
            self.close()
            raise

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
        """Group writes into one atomic commit (one fsync and rename for all; visible together at the end)."""
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

    def set_attrs(self, attrs: dict[str, Any]) -> None:
        """Set root attributes (e.g. an import's status): atomically, with the open batch when there is one."""
        attrs = check_attrs(dict(attrs), str(self.path))
        if self._batch is not None:
            self._batch[0].attrs.update(attrs)
            return
        with self._staged(copy=True) as f:
            f.attrs.update(attrs)

    @property
    def pending(self) -> list[str]:
        """Ids written in the open batch, not yet committed."""
        return list(self._batch[1]) if self._batch else []

    def close(self) -> None:
        """Every write is already on disk; this removes the swap file (a second copy of the store)."""
        self._drop_swap()
        if self._writer_lock is not None:
            self._lock_path.unlink(missing_ok=True)
            os.close(self._writer_lock)
            self._writer_lock = None

    def __del__(self) -> None:
        if getattr(self, "_writer_lock", None) is not None:
            self.close()

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
        """Yield an open copy of the store to change; on success it replaces the store with one atomic rename."""
        if not copy:  # a new store: nothing to preserve
            tmp = self._temp_name("new")
            try:
                with h5py.File(tmp, "w-", libver=("earliest", "latest")) as f:
                    yield f
                self._publish(tmp)
            except OSError as err:
                raise self._write_error(err) from None
            finally:
                tmp.unlink(missing_ok=True)
            return
        lock = self._open_swap()
        try:
            try:
                f = h5py.File(self._swap, "r+", locking=False)  # we hold the exclusive lock ourselves
                self._catch_up(f)
            except OSError as err:
                raise self._write_error(err) from None
            try:
                yield f
            finally:
                f.close()
            try:
                previous = list(self._ids)
                keep = self._temp_name("old")
                try:
                    os.link(self.path, keep)  # the version being replaced becomes the next swap
                except OSError:
                    keep = None  # no hard links here: the next write copies the store in full
                self._publish(self._swap)
                if keep is not None:
                    os.replace(keep, self._swap)
                    self._swap_ids = previous
                else:
                    self._swap = None
            except OSError as err:
                raise self._write_error(err) from None
        except BaseException:
            self._drop_swap()  # half-changed: never reuse it
            raise
        finally:
            os.close(lock)

    def _open_swap(self) -> int:
        """Lock the swap exclusively, making a fresh full copy of the store when the old one cannot be used."""
        if self._swap is not None and self._swap.exists():
            fd = os.open(self._swap, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except OSError:  # a reader still has this version open: leave it alone
                os.close(fd)
        self._drop_swap()
        self._swap = self._temp_name("swap")
        try:
            shutil.copyfile(self.path, self._swap)
        except OSError as err:
            self._drop_swap()
            raise self._write_error(err) from None
        self._swap_ids = list(self._ids)
        self.full_copies += 1
        fd = os.open(self._swap, os.O_RDWR)
        with contextlib.suppress(OSError):  # a fresh file nobody else knows; the lock only guards its reuse
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd

    def _catch_up(self, f: h5py.File) -> None:
        """Copy into the swap the trajectories the store gained since the swap's version."""
        missing = [i for i in self._ids if i not in set(self._swap_ids)]
        if missing:
            with h5py.File(self.path, "r") as src:
                for traj_id in missing:
                    src.copy(src[f"trajectories/{traj_id}"], f["trajectories"], name=traj_id)
        self._swap_ids = list(self._ids)

    def _publish(self, tmp: Path) -> None:
        if self.durable:
            fsync_path(tmp)
        os.replace(tmp, self.path)
        if self.durable:
            fsync_path(self.path.parent)

    def _lock_store(self) -> int:
        """One writer per store: a second one gets a clear error instead of silently dropping trajectories."""
        self._lock_path = self.path.parent / f".{self.path.name}.writer.lock"
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(
                f"{self.path} is being written by another process; wait for it or write to another file"
            ) from None
        except OSError:  # file system without locks: nothing to enforce with
            pass
        return fd

    def _drop_swap(self) -> None:
        if self._swap is not None:
            self._swap.unlink(missing_ok=True)
        self._swap, self._swap_ids = None, []

    def _temp_name(self, tag: str) -> Path:
        return self.path.parent / f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.{tag}.tmp"

    def _write_error(self, err: OSError) -> OutputError:
        return OutputError(f"cannot write {self.path}: {err.strerror or err}; check free space and permissions")

    def _remove_stale_temporaries(self) -> None:
        """Temporaries of writers that were killed (their process is gone) are garbage: remove them."""
        remove_dead_temporaries(self.path.parent, f".{self.path.name}.", ".tmp")


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


