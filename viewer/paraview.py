"""Time series for ParaView: temporal VTKHDF (h5py), XDMF + HDF5 (meshio) and PVD with one VTU per step (meshio).

Every writer takes a `Series` (what to write, read one frame at a time) and a final path; it writes into a
temporary name in the destination folder and renames into place, so an interrupted export leaves nothing half
written under the final name.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.sax.saxutils import quoteattr

import h5py
import numpy as np

# VTK cell type ids and meshio cell names for our cell sizes.
VTK_TYPES = {1: 1, 3: 5, 4: 10}  # VTK_VERTEX, VTK_TRIANGLE, VTK_TETRA
MESHIO_TYPES = {1: "vertex", 3: "triangle", 4: "tetra"}
_CWD_LOCK = threading.Lock()  # meshio's XDMF writer needs a chdir (process-wide): one export at a time


@dataclasses.dataclass
class Series:
    """A trajectory ready to export: reference mesh, and per step the points and point data arrays."""

    reference: np.ndarray  # [N, 3] float32
    cells: np.ndarray  # [M, k] int
    times: np.ndarray  # [T] seconds
    frame: Callable[[int], tuple[np.ndarray, dict[str, np.ndarray]]]  # t -> (points [N, 3], {name: [N(, C)]})
    static: dict[str, np.ndarray]  # point data that does not change (e.g. node_type)

    def steps(self) -> Iterator[tuple[int, np.ndarray, dict[str, np.ndarray]]]:
        for t in range(len(self.times)):
            points, data = self.frame(t)
            yield t, points, data


def write_vtkhdf(series: Series, path: Path) -> list[Path]:
    """Temporal VTKHDF UnstructuredGrid, one partition: topology once, Points and PointData once per step.

    The single-part layout: NumberOfPoints/Cells/ConnectivityIds hold one value; Steps/PointOffsets = t * N;
    PartOffsets, CellOffsets and ConnectivityIdOffsets are zero (every step reuses the one topology). Static point
    data is stored once and every step points at it (offset 0)."""
    num_nodes, (num_cells, k) = len(series.reference), series.cells.shape
    num_steps = len(series.times)
    tmp = _temporary(path)
    try:
        with h5py.File(tmp, "w") as f:
            root = f.create_group("VTKHDF")
            root.attrs["Version"] = np.array([2, 0], np.int64)
            root.attrs.create("Type", np.bytes_("UnstructuredGrid"))  # fixed-length ASCII, as VTK expects
            root["NumberOfPoints"] = np.array([num_nodes], np.int64)
            root["NumberOfCells"] = np.array([num_cells], np.int64)
            root["NumberOfConnectivityIds"] = np.array([num_cells * k], np.int64)
            root["Types"] = np.full(num_cells, VTK_TYPES[k], np.uint8)
            root["Connectivity"] = series.cells.astype(np.int64).ravel()
            root["Offsets"] = np.arange(0, num_cells * k + 1, k, dtype=np.int64)
            points = root.create_dataset("Points", (num_steps * num_nodes, 3), np.float32, chunks=(num_nodes, 3))
            point_data = root.create_group("PointData")
            steps = root.create_group("Steps")
            steps.attrs["NSteps"] = num_steps
            steps["Values"] = np.asarray(series.times, np.float64)
            steps["PartOffsets"] = np.zeros(num_steps, np.int64)
            steps["NumberOfParts"] = np.ones(num_steps, np.int64)
            steps["PointOffsets"] = np.arange(num_steps, dtype=np.int64) * num_nodes
            steps["CellOffsets"] = np.zeros((num_steps, 1), np.int64)
            steps["ConnectivityIdOffsets"] = np.zeros((num_steps, 1), np.int64)
            offsets = steps.create_group("PointDataOffsets")
            for name, values in series.static.items():
                point_data[name] = values
                offsets[name] = np.zeros(num_steps, np.int64)
            for t, frame_points, data in series.steps():
                points[t * num_nodes : (t + 1) * num_nodes] = frame_points
                for name, values in data.items():
                    if t == 0:
                        shape = (num_steps * num_nodes, *values.shape[1:])
                        point_data.create_dataset(name, shape, np.float32, chunks=(num_nodes, *values.shape[1:]))
                        offsets[name] = np.arange(num_steps, dtype=np.int64) * num_nodes
                    point_data[name][t * num_nodes : (t + 1) * num_nodes] = values
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return [path]


def write_xdmf(series: Series, path: Path) -> list[Path]:
    """XDMF time series on the reference mesh with a `displacement` vector per step (ParaView: Warp By Vector).

    meshio 5.3 writes the heavy data to `<stem>.h5` in the CURRENT directory, not beside the .xdmf (meshio
    #1442), and the .xdmf names it relative to itself. So both are written inside a private temporary folder
    made the working directory, then moved beside each other into place."""
    import meshio

    heavy = path.with_suffix(".h5")
    work = Path(tempfile.mkdtemp(prefix=".xdmf-", dir=path.parent))
    try:
        with _CWD_LOCK:
            previous = os.getcwd()
            os.chdir(work)
            try:
                with meshio.xdmf.TimeSeriesWriter(path.name) as writer:
                    writer.write_points_cells(series.reference, [(MESHIO_TYPES[series.cells.shape[1]], series.cells)])
                    for t, points, data in series.steps():
                        data = {**series.static, **data, "displacement": points - series.reference}
                        writer.write_data(float(series.times[t]), point_data=data)
            finally:
                os.chdir(previous)
        os.replace(work / heavy.name, heavy)
        os.replace(work / path.name, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return [path, heavy]


def write_pvd(series: Series, path: Path) -> list[Path]:
    """A .pvd collection plus a folder `<stem>/` with one .vtu per step (moving points, point data)."""
    import meshio

    folder = path.with_suffix("")
    work = Path(tempfile.mkdtemp(prefix=".pvd-", dir=path.parent))
    cells = [(MESHIO_TYPES[series.cells.shape[1]], series.cells)]
    entries = []
    try:
        pieces = work / folder.name
        pieces.mkdir()
        for t, points, data in series.steps():
            name = f"{folder.name}_{t:06d}.vtu"
            data = {**series.static, **data, "displacement": points - series.reference}
            meshio.write(pieces / name, meshio.Mesh(points, cells, point_data=data), file_format="vtu")
            file = quoteattr(f"{folder.name}/{name}")
            entries.append(f'    <DataSet timestep="{float(series.times[t])!r}" part="0" file={file}/>')
        (work / path.name).write_text(
            '<?xml version="1.0"?>\n<VTKFile type="Collection" version="0.1" byte_order="LittleEndian">\n'
            "  <Collection>\n" + "\n".join(entries) + "\n  </Collection>\n</VTKFile>\n"
        )
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(pieces, folder)
        os.replace(work / path.name, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return [path, folder]


def _temporary(path: Path) -> Path:
    return path.parent / f".{path.name}.{os.getpid()}.tmp"
