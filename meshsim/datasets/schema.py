"""Names and enums of the HDF5 trajectory store shared by every producer and consumer of trajectories."""

from __future__ import annotations

import enum

FORMAT_TRAJECTORIES = "meshsim.trajectories"
FORMAT_ROLLOUT = "meshsim.rollout"
FORMAT_VERSION = 1


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
