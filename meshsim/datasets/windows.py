"""Torch dataset of frame windows over many trajectory files, read lazily chunk by chunk.

Item i is one (file, trajectory, t) with t in [history, T-1-horizon]: frames t-history .. t+horizon of
world_pos, fields and globals, plus the trajectory's mesh. Files are opened on first use in each process (h5py
handles must not cross a fork), so the dataset is safe with DataLoader workers; only the static part of a few
recent trajectories is cached, never whole files.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from meshsim.datasets.reader import TrajectoryFile
from meshsim.errors import DataFormatError

STATIC_CACHE = 16  # trajectories whose mesh stays in memory per process


class FrameWindowDataset(torch.utils.data.Dataset):
    def __init__(self, paths: str | os.PathLike | Sequence[str | os.PathLike], history: int = 1, horizon: int = 1):
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.paths = [str(p) for p in paths]
        if not self.paths:
            raise DataFormatError("FrameWindowDataset needs at least one trajectory file")
        if isinstance(history, bool) or not isinstance(history, int) or history < 0:
            raise DataFormatError(f"history must be an integer >= 0, got {history!r}")
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 0:
            raise DataFormatError(f"horizon must be an integer >= 0, got {horizon!r}")
        self.history, self.horizon = history, horizon
        span = history + 1 + horizon
        # One row per trajectory: file index, id, first window start (t - history), number of windows.
        self._trajectories: list[tuple[int, str, int]] = []
        counts = []
        for file_index, path in enumerate(self.paths):
            with TrajectoryFile(path) as f:
                for traj_id in f.ids:
                    windows = f.num_frames(traj_id) - span + 1
                    if windows > 0:
                        self._trajectories.append((file_index, traj_id, windows))
                        counts.append(windows)
        if not counts:
            raise DataFormatError(
                f"no trajectory in {', '.join(self.paths)} has the {span} frames a window needs "
                f"(history={history}, horizon={horizon}); lower them or use longer trajectories"
            )
        self._offsets = np.concatenate([[0], np.cumsum(counts)])
        self._files: dict[str, TrajectoryFile] = {}
        self._pid = None
        self._static: OrderedDict[tuple[int, str], dict[str, Any]] = OrderedDict()

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def locate(self, index: int) -> tuple[str, str, int]:
        """(path, trajectory id, t) of item `index`."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        index %= len(self)
        row = int(np.searchsorted(self._offsets, index, side="right") - 1)
        file_index, traj_id, _ = self._trajectories[row]
        return self.paths[file_index], traj_id, int(index - self._offsets[row]) + self.history

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, traj_id, t = self.locate(index)
        f = self._file(path)
        static = self._static_of(f, path, traj_id)
        window = f.window(traj_id, t - self.history, t + self.horizon + 1)
        item = {
            "mesh_pos": static["mesh_pos"],
            "cells": static["cells"],
            "node_type": static["node_type"],
            "dt": static["dt"],
            "attrs": static["attrs"],
            "traj_id": traj_id,
            "t": t,
            "path": path,
        }
        for name, arr in window.items():
            item[name] = torch.from_numpy(np.ascontiguousarray(arr))
        return item

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()

    def __getstate__(self) -> dict[str, Any]:
        # Open files never travel to worker processes; each process opens its own.
        state = dict(self.__dict__)
        state.update(_files={}, _pid=None, _static=OrderedDict())
        return state

    def _file(self, path: str) -> TrajectoryFile:
        if self._pid != os.getpid():  # forked worker: handles inherited from the parent are not ours to use
            self._files, self._static, self._pid = {}, OrderedDict(), os.getpid()
        if path not in self._files:
            self._files[path] = TrajectoryFile(path)
        return self._files[path]

    def _static_of(self, f: TrajectoryFile, path: str, traj_id: str) -> dict[str, Any]:
        key = (path, traj_id)
        if key in self._static:
            self._static.move_to_end(key)
            return self._static[key]
        s = f.static(traj_id)
        numeric = {k: float(v) for k, v in s["attrs"].items() if isinstance(v, (bool, int, float))}
        static = {
            "mesh_pos": torch.from_numpy(s["mesh_pos"]),
            "cells": torch.from_numpy(s["cells"].astype(np.int64)),
            "node_type": torch.from_numpy(s["node_type"].astype(np.int64)),
            "dt": torch.tensor(s["dt"], dtype=torch.float32),
            "attrs": {k: torch.tensor(v, dtype=torch.float32) for k, v in numeric.items()},
        }
        self._static[key] = static
        if len(self._static) > STATIC_CACHE:
            self._static.popitem(last=False)
        return static
