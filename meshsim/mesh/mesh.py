"""The `Mesh` value type: points and cells of one kind (triangles or tetrahedra), checked on construction."""

from __future__ import annotations

import dataclasses

import numpy as np

from meshsim.errors import MeshError

NODES_PER_CELL = {"triangle": 3, "tetra": 4}


@dataclasses.dataclass
class Mesh:
    points: np.ndarray  # [N, d] float64, d = 2 or 3
    cells: np.ndarray  # [M, k] int64
    cell_type: str  # "triangle" (2D, or a surface in 3D) | "tetra" (3D)

    def __post_init__(self):
        if self.cell_type not in NODES_PER_CELL:
            raise MeshError(f"cell type {self.cell_type!r} is not supported; use 'triangle' or 'tetra'")
        points = np.asarray(self.points)
        cells = np.asarray(self.cells)
        if points.dtype.kind not in "iuf" or points.ndim != 2 or points.shape[1] not in (2, 3):
            raise MeshError(f"mesh points have shape {list(points.shape)}, expected [N, 2] or [N, 3] numbers")
        if not np.isfinite(points).all():
            raise MeshError(f"mesh point {int(np.argwhere(~np.isfinite(points))[0, 0])} is not finite (NaN or inf)")
        k = NODES_PER_CELL[self.cell_type]
        if cells.dtype.kind not in "iu" or cells.ndim != 2 or cells.shape[1] != k:
            raise MeshError(f"{self.cell_type} cells have shape {list(cells.shape)}, expected [M, {k}] integers")
        if cells.size and (cells.min() < 0 or cells.max() >= len(points)):
            row = int(np.argmax(((cells < 0) | (cells >= len(points))).any(1)))
            raise MeshError(f"mesh cell {row} = {cells[row].tolist()} indexes outside the {len(points)} points")
        if self.cell_type == "tetra" and points.shape[1] != 3:
            raise MeshError("tetrahedra need 3D points; got 2D points")
        self.points = points.astype(np.float64, copy=False)
        self.cells = cells.astype(np.int64, copy=False)

    @property
    def num_nodes(self) -> int:
        return int(self.points.shape[0])

    @property
    def num_cells(self) -> int:
        return int(self.cells.shape[0])

    @property
    def dim(self) -> int:
        return int(self.points.shape[1])
