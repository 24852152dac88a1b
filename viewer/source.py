"""Frame-by-frame access to a meshsim trajectory or rollout file, for the viewer, the renderer and the exports.

`FrameSource` opens the file once through the validating `TrajectoryFile`, checks its structure before anything is
served (shapes, dtypes, index ranges, finite first and last frames) and then reads ONE frame at a time, so a
100,000-node, 400-frame rollout never has to fit in memory. What the viewer draws is derived here too: the surface
triangles of tetrahedral meshes (computed once), positions padded to 3-D, per-node scalar fields (vector fields as
magnitudes, plus `speed`, `displacement`, `node_type` and, in rollouts, `error` = |pred - gt|), and a fixed colour
range per trajectory and field. h5py is not safe for concurrent reads, so every read holds one lock.
"""

from __future__ import annotations

import functools
import os
import threading

import h5py
import numpy as np

from meshsim.datasets.reader import TrajectoryFile
from meshsim.datasets.schema import NodeType
from meshsim.errors import DataFormatError
from meshsim.mesh.topology import boundary_facets, cell_facets

POSITION_COMPONENTS = ("x", "y", "z")  # probe quantities besides the colour fields
# Per-trajectory attributes that only the scene generators write: evidence the ground truth came from a solver.
SOLVER_ATTRS = ("solver_dt", "substeps", "scene_config", "source_index")  # FEM, MPM, imported datasets
SOLVER_ROOT_ATTRS = ("scenario", "creator_tool", "source")

RANGE_SAMPLE_FRAMES = 32  # colour ranges and bounds look at <= this many evenly spaced frames


def _cached(method):
    """Memoize a method per instance (results live and die with the open file, unlike functools.lru_cache)."""

    @functools.wraps(method)
    def wrapper(self, *args):
        key = (method.__name__, *args)
        if key not in self._memo:
            self._memo[key] = method(self, *args)
        return self._memo[key]

    return wrapper


class FrameSource:
    """A validated, read-only view of one trajectory/rollout file. Use as a context manager or call close().

    Opening checks the root attributes and the layout of every trajectory (metadata only), then the mesh and the
    first and last frames of the first one; any other trajectory gets the same checks when first used."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._memo: dict[tuple, object] = {}
        self._store = TrajectoryFile(self.path)  # checks the root attributes
        try:
            self.format = self._store.attrs["format"]
            self.is_rollout = self._store.is_rollout
            self.ids = self._store.ids
            if not self.ids:
                raise DataFormatError(f"{self.path}: no trajectories stored; write some with meshsim generate")
            for tid in self.ids:
                self._store.num_frames(tid)  # layout of every trajectory: shapes and dtypes, no data read
            self._static: dict[str, dict] = {}  # validated meshes, read when a trajectory is first used
            self._info: dict[str, dict] = {}
            self.require(self.ids[0])
            # Fields per frame are read directly (the reader has no per-frame field access); layout as validated.
            self._file = h5py.File(self.path, "r")
        except BaseException:
            self._store.close()
            raise

    # -- file life cycle ---------------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._file.close()
            self._store.close()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- what is in the file -------------------------------------------------------------------------------------
    def require(self, traj_id: str) -> str:
        """`traj_id` once its mesh and its first and last frames passed validation; DataFormatError otherwise."""
        if traj_id in self._info:
            return traj_id
        if traj_id not in self.ids:
            shown = ", ".join(self.ids[:5]) + (" ..." if len(self.ids) > 5 else "")
            raise DataFormatError(f"{self.path}: no trajectory {traj_id!r}; stored ids: {shown}")
        with self._lock:
            static = self._store.static(traj_id)
            for t in sorted({0, static["num_frames"] - 1}):
                for source in ("gt", "pred") if self.is_rollout else ("gt",):
                    self._store.frame(traj_id, t, source)
            self._static[traj_id] = static
            self._info[traj_id] = self._describe(traj_id)
        return traj_id

    def info(self, traj_id: str) -> dict:
        """JSON-ready description: sizes, dt, sources, colourable fields (with the sources that have them)."""
        return dict(self._info[self.require(traj_id)])

    def num_frames(self, traj_id: str) -> int:
        if traj_id in self._info:
            return self._info[traj_id]["num_frames"]
        if traj_id not in self.ids:
            self.require(traj_id)  # raises, naming the stored ids
        with self._lock:
            return self._store.num_frames(traj_id)  # layout only: no mesh or frame is read

    def sources(self, traj_id: str) -> list[str]:
        return self.info(traj_id)["sources"]

    def fields(self, traj_id: str) -> dict[str, list[str]]:
        """Field name -> the sources ("gt", "pred") that can be coloured by it."""
        return self.info(traj_id)["fields"]

    # -- per-frame data ----------------------------------------------------------------------------------------
    @_cached
    def surface(self, traj_id: str) -> np.ndarray:
        """Triangles to draw, uint32 [F, 3]: the triangles themselves or the boundary faces of tetrahedra."""
        cells = self.cells(traj_id)
        if cells.shape[1] == 4:
            return boundary_facets(cells).astype(np.uint32)
        if cells.shape[1] == 3:
            return cells.astype(np.uint32)
        return np.zeros((0, 3), np.uint32)  # particles are drawn as points

    @_cached
    def all_faces(self, traj_id: str) -> np.ndarray:
        """Every distinct face of a tetrahedral mesh, interior ones included, uint32 [F, 3] (what a clip plane
        opens up); the surface triangles for other meshes."""
        cells = self.cells(traj_id)
        if cells.shape[1] != 4:
            return self.surface(traj_id)
        facets = cell_facets(cells)
        _, first = np.unique(np.sort(facets, axis=1), axis=0, return_index=True)
        return facets[np.sort(first)].astype(np.uint32)

    def cells(self, traj_id: str) -> np.ndarray:
        """Cells as stored, int32 [M, k]."""
        return self._static[self.require(traj_id)]["cells"]

    def node_type(self, traj_id: str) -> np.ndarray:
        return self._static[self.require(traj_id)]["node_type"]

    def reference(self, traj_id: str) -> np.ndarray:
        """Reference configuration `mesh_pos`, float32 [N, 3]."""
        return _pad3(self._static[self.require(traj_id)]["mesh_pos"])

    def positions(self, traj_id: str, t: int, source: str = "gt") -> np.ndarray:
        """World positions of frame t, float32 [N, 3] (2-D data gets z = 0)."""
        self._check_frame(traj_id, t, source)
        with self._lock:
            return _pad3(self._store.frame(traj_id, t, source))  # checked finite by the reader

    def field(self, traj_id: str, name: str, t: int, source: str = "gt") -> np.ndarray:
        """Per-node scalar field of frame t, float32 [N]; vector fields become their magnitude."""
        self._check_frame(traj_id, t, source)
        if source not in self.fields(traj_id).get(name, ()):
            raise DataFormatError(
                f"{self.path}: trajectory {traj_id!r} has no field {name!r} for source {source!r}; "
                f"available: {sorted(self.fields(traj_id))}"
            )
        stored = self._info[traj_id]["stored_fields"]
        if name in stored:
            return _magnitude(self.stored_field(traj_id, name, t, source))
        if name == "error":
            return np.linalg.norm(self.positions(traj_id, t, "pred") - self.positions(traj_id, t, "gt"), axis=1)
        if name == "displacement":
            return np.linalg.norm(self.positions(traj_id, t, source) - self.reference(traj_id), axis=1)
        if name == "node_type":
            return self.node_type(traj_id).astype(np.float32)
        # speed: central difference, one-sided at the ends, zero for a single frame
        last = self.num_frames(traj_id) - 1
        lo, hi = max(t - 1, 0), min(t + 1, last)
        if lo == hi:
            return np.zeros(self.info(traj_id)["num_nodes"], np.float32)
        delta = self.positions(traj_id, hi, source) - self.positions(traj_id, lo, source)
        return (np.linalg.norm(delta, axis=1) / ((hi - lo) * self.info(traj_id)["dt"])).astype(np.float32)

    def probe_quantities(self, traj_id: str) -> list[str]:
        """What `node_series` can give: x, y, z (position components) and every colour field."""
        return [*POSITION_COMPONENTS, *self.fields(traj_id)]

    def node_series(self, traj_id: str, node: int, quantity: str, source: str = "gt") -> np.ndarray:
        """One node's value of `quantity` at every frame, float64 [T]: a position component (x, y, z) or a colour
        field as `field` gives it (magnitudes of vectors, error, speed, ...). Reads one node, not whole frames."""
        info = self.info(traj_id)
        if source not in info["sources"]:
            raise DataFormatError(f"{self.path}: source {source!r} not in this file; use one of {info['sources']}")
        if not 0 <= node < info["num_nodes"]:
            raise DataFormatError(f"{self.path}: trajectory {traj_id!r} has nodes 0..{info['num_nodes'] - 1}; "
                                  f"got node {node}")  # fmt: skip
        if quantity in POSITION_COMPONENTS:
            return self._node_positions(traj_id, node, source)[:, POSITION_COMPONENTS.index(quantity)]
        if source not in self.fields(traj_id).get(quantity, ()):
            raise DataFormatError(f"{self.path}: trajectory {traj_id!r} has no quantity {quantity!r} for {source!r}; "
                                  f"available: {self.probe_quantities(traj_id)}")  # fmt: skip
        if quantity in info["stored_fields"]:
            key = f"fields/{quantity}" if source == "gt" else f"pred/fields/{quantity}"
            with self._lock:
                values = np.asarray(self._file["trajectories"][traj_id][key][:, node], np.float64)
            if not np.isfinite(values).all():
                raise DataFormatError(f"{self.path}: trajectory {traj_id!r} {key} node {node} holds NaN or inf")
            return _magnitude(values).astype(np.float64)  # vectors as their length, as `field` shows them
        if quantity == "error":
            delta = self._node_positions(traj_id, node, "pred") - self._node_positions(traj_id, node, "gt")
            return np.linalg.norm(delta, axis=1)
        if quantity == "node_type":
            return np.full(info["num_frames"], float(self.node_type(traj_id)[node]))
        path = self._node_positions(traj_id, node, source)
        if quantity == "displacement":
            return np.linalg.norm(path - self.reference(traj_id)[node].astype(np.float64), axis=1)
        # speed, as `field` computes it: central difference, one-sided at the ends, zero for a single frame
        count = len(path)
        if count == 1:
            return np.zeros(1)
        t = np.arange(count)
        lo, hi = np.maximum(t - 1, 0), np.minimum(t + 1, count - 1)
        return np.linalg.norm(path[hi] - path[lo], axis=1) / ((hi - lo) * info["dt"])

    def _node_positions(self, traj_id: str, node: int, source: str) -> np.ndarray:
        key = "world_pos" if source == "gt" else "pred/world_pos"
        with self._lock:
            path = np.asarray(self._file["trajectories"][traj_id][key][:, node], np.float64)
        if not np.isfinite(path).all():
            raise DataFormatError(f"{self.path}: trajectory {traj_id!r} {key} node {node} holds NaN or inf")
        return np.pad(path, ((0, 0), (0, 3 - path.shape[1])))  # 2-D data gets z = 0

    def stored_field(self, traj_id: str, name: str, t: int, source: str = "gt") -> np.ndarray:
        """A field as stored at frame t, float32 [N] or [N, C], checked finite."""
        self._check_frame(traj_id, t, source)
        if name not in self._info[traj_id]["stored_fields"] or source not in self.fields(traj_id)[name]:
            raise DataFormatError(f"{self.path}: trajectory {traj_id!r} stores no field {name!r} for {source!r}")
        key = f"fields/{name}" if source == "gt" else f"pred/fields/{name}"
        values = np.asarray(self._read(traj_id, key, t), np.float32)
        if not np.isfinite(values).all():
            raise DataFormatError(f"{self.path}: trajectory {traj_id!r} {key} frame {t} holds NaN or inf values")
        return values

    @_cached
    def field_range(self, traj_id: str, name: str) -> tuple[float, float]:
        """One colour range for a field over the whole trajectory and both panes, so colours compare across
        frames and between ground truth and prediction (sampled on <= RANGE_SAMPLE_FRAMES frames)."""
        lo, hi = np.inf, -np.inf
        for t in self.sample_frames(traj_id):
            for source in self.fields(traj_id)[name]:
                values = self.field(traj_id, name, t, source)
                lo, hi = min(lo, float(values.min())), max(hi, float(values.max()))
        if name in ("error", "speed", "displacement") or name in self._info[traj_id]["vector_fields"]:
            lo = 0.0  # magnitudes: anchor the scale at zero
        if not hi > lo:
            hi = lo + 1.0  # a constant field still gets a usable scale
        return lo, hi

    @_cached
    def bounds(self, traj_id: str) -> tuple[list[float], list[float]]:
        """Axis-aligned box holding every source over the sampled frames: the camera frames the whole motion."""
        lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
        for t in self.sample_frames(traj_id):
            for source in self.sources(traj_id):
                frame = self.positions(traj_id, t, source)
                lo, hi = np.minimum(lo, frame.min(0)), np.maximum(hi, frame.max(0))
        return lo.tolist(), hi.tolist()

    def sample_frames(self, traj_id: str) -> list[int]:
        count = self.num_frames(traj_id)
        return sorted({int(round(x)) for x in np.linspace(0, count - 1, min(count, RANGE_SAMPLE_FRAMES))})

    # -- internals ---------------------------------------------------------------------------------------------
    def _check_frame(self, traj_id: str, t: int, source: str) -> None:
        if source not in self.sources(self.require(traj_id)):
            allowed = self.sources(traj_id)
            raise DataFormatError(f"{self.path}: source {source!r} not in this file; use one of {allowed}")
        count = self.num_frames(traj_id)
        if not 0 <= t < count:
            raise DataFormatError(f"{self.path}: trajectory {traj_id!r} has frames 0..{count - 1}; got frame {t}")

    def _read(self, traj_id: str, key: str, t: int) -> np.ndarray:
        with self._lock:
            return self._file["trajectories"][traj_id][key][t]

    def _describe(self, traj_id: str) -> dict:
        static = self._static[traj_id]
        sources = ["gt", "pred"] if self.is_rollout else ["gt"]
        stored: dict[str, list[str]] = {}
        for source, shapes in (("gt", static["fields"]), ("pred", static["pred_fields"])):
            for name in shapes:
                stored.setdefault(name, []).append(source)
        vectors = {name for name, shape in {**static["fields"], **static["pred_fields"]}.items() if len(shape) == 3
                   and shape[2] > 1}  # fmt: skip
        fields = {name: srcs for name, srcs in sorted(stored.items())}
        for name in ("speed", "displacement", "node_type"):
            fields.setdefault(name, list(sources))
        if self.is_rollout:
            fields.setdefault("error", ["gt", "pred"])
        default_field = next((name for name in ("error", "stress", "speed") if name in fields), None)
        present = sorted({int(v) for v in np.unique(static["node_type"])})
        node_types = {str(v): NodeType(v).name.lower() if v in NodeType._value2member_map_ else f"type {v}"
                      for v in present}  # fmt: skip
        return {
            "id": traj_id, "num_frames": int(static["num_frames"]), "num_nodes": int(static["num_nodes"]),
            "dim": int(static["dim"]), "num_cells": int(static["num_cells"]), "cell_type": static["cell_type"],
            "dt": float(static["dt"]), "sources": sources, "fields": fields, "stored_fields": sorted(stored),
            "vector_fields": sorted(vectors), "default_field": default_field, "node_types": node_types,
            "labels": self._labels(static["attrs"]),
        }  # fmt: skip

    def _labels(self, attrs: dict) -> dict[str, dict]:
        """What each pane shows, from the file's own metadata: {source: {role, origin, text}}.

        origin is "learned" (a model's prediction: the `pred` of a rollout, or a trajectory whose attribute
        `source` is "learned", as `meshsim study` writes), "solver" (written by a scene generator or an importer)
        or "" (unknown, e.g. a sample file)."""
        root = self._store.attrs
        solver = any(key in attrs for key in SOLVER_ATTRS) or any(key in root for key in SOLVER_ROOT_ATTRS)
        if str(attrs.get("source", "")) == "learned":
            return {"gt": {"role": "prediction", "origin": "learned", "text": "prediction (learned)"}}
        gt_origin = "solver" if solver else ""
        labels = {"gt": {"role": "ground truth", "origin": gt_origin,
                         "text": "ground truth (solver)" if solver else "ground truth"}}  # fmt: skip
        if not self.is_rollout:
            labels["gt"] = {"role": "simulation", "origin": gt_origin, "text": "simulation (solver)" if solver
                            else "trajectory"}  # fmt: skip
            return labels
        step = attrs.get("rollout_checkpoint_step")
        text = "prediction (learned" + (f", step {int(step)})" if step is not None else ")")
        labels["pred"] = {"role": "prediction", "origin": "learned", "text": text}
        return labels


def _pad3(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float32)
    if points.shape[-1] == 3:
        return points
    return np.concatenate([points, np.zeros((*points.shape[:-1], 3 - points.shape[-1]), np.float32)], axis=-1)


def _magnitude(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, np.float32)
    if values.ndim == 2:
        values = values[:, 0] if values.shape[1] == 1 else np.linalg.norm(values, axis=1)
    return np.ascontiguousarray(values, np.float32)
