"""HDF5 trajectory store: schema, atomic writer, validating reader, torch dataset of frame windows, importers
(TFRecord datasets; FEM time series: `import_series`).

    from meshsim.datasets import Trajectory, TrajectoryWriter, TrajectoryFile, FrameWindowDataset

The layout on disk is described in docs/data-format.md.
"""

from meshsim.datasets.inspect import format_summary, summarize, validate_file
from meshsim.datasets.reader import TrajectoryFile
from meshsim.datasets.schema import FORMAT_ROLLOUT, FORMAT_TRAJECTORIES, FORMAT_VERSION, NodeType
from meshsim.datasets.series import import_series
from meshsim.datasets.trajectory import Trajectory, check_trajectory
from meshsim.datasets.writer import TrajectoryWriter

__all__ = [
    "FORMAT_ROLLOUT",
    "FORMAT_TRAJECTORIES",
    "FORMAT_VERSION",
    "FrameWindowDataset",
    "NodeType",
    "Trajectory",
    "TrajectoryFile",
    "TrajectoryWriter",
    "check_trajectory",
    "format_summary",
    "import_series",
    "summarize",
    "validate_file",
]


def __getattr__(name: str):
    # FrameWindowDataset needs torch; import it only when asked so that readers and the CLI start fast.
    if name == "FrameWindowDataset":
        from meshsim.datasets.windows import FrameWindowDataset

        return FrameWindowDataset
    raise AttributeError(f"module 'meshsim.datasets' has no attribute {name!r}")
