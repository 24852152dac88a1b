"""Names and enums of the HDF5 trajectory store shared by every producer and consumer of trajectories."""

from __future__ import annotations

import enum

FORMAT_TRAJECTORIES = "meshsim.trajectories"
FORMAT_ROLLOUT = "meshsim.rollout"
FORMAT_VERSION = 1

# Root attributes written into every store (SI units throughout).
UNITS = {"length_unit": "m", "time_unit": "s", "stress_unit": "Pa"}

# Nodes per cell -> the cell type name stored in the `cell_type` attribute (meshio's names).
CELL_TYPES = {1: "vertex", 3: "triangle", 4: "tetra"}

# Per-trajectory attributes the store owns; user attrs may not use these names.
RESERVED_ATTRS = ("dt", "cell_type")


class NodeType(enum.IntEnum):
    """MeshGraphNets node types, plus HCMT's SYMMETRIC (one component fixed on a symmetry plane)."""

    NORMAL = 0
    OBSTACLE = 1
    AIRFOIL = 2
    HANDLE = 3
    INFLOW = 4
    OUTFLOW = 5
    WALL_BOUNDARY = 6
    SYMMETRIC = 7
    SIZE = 9  # width of the one-hot encoding, as in the published models
