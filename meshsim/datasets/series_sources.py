"""ParaView-style time series opened as a sequence of frames: .pvd, XDMF temporal collections, temporal VTKHDF,
and per-frame .vtu/.vtk files (a folder, a glob pattern, or a list).

`open_series(sources)` returns a `FrameSequence`: a label for messages, the time values (None when the files
carry none), a label per frame, and `read(i)` giving frame i as a meshio.Mesh (points, cells, point data, cell
data and cell sets). XDMF and VTKHDF keep one topology for all frames and read it once.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import numpy as np

from meshsim.errors import DataFormatError
from meshsim.mesh.io import _quiet  # meshio prints its own errors; we report one line

FRAME_SUFFIXES = (".vtu", ".vtk")
SERIES_SUFFIXES = (".pvd", ".xdmf", ".xmf", ".vtkhdf", ".hdf")
VTK_CELL_NAMES = {1: "vertex", 3: "line", 5: "triangle", 7: "polygon", 9: "quad", 10: "tetra", 12: "hexahedron",
                  13: "wedge", 14: "pyramid", 22: "triangle6", 24: "tetra10", 25: "hexahedron20"}  # fmt: skip


@dataclasses.dataclass
class FrameSequence:
    label: str  # the source, for messages
    times: np.ndarray | None  # [T] seconds, or None when the files carry no time values
    frames: list[str]  # a label per frame (its file, or "<source> step i")
    read: Callable[[int], object]  # i -> meshio.Mesh


def open_series(source: str | os.PathLike | list) -> FrameSequence:
    """One trajectory's files: a .pvd/.xdmf/.vtkhdf path, a folder or glob of frames, or a list of frame files."""
    if isinstance(source, (list, tuple)):
        more = f" (+{len(source) - 1} files)" if len(source) > 1 else ""
        return _frame_files([Path(p) for p in source], label=f"{source[0]}{more}")
    text = str(source)
    if any(c in text for c in "*?["):
        files = [Path(p) for p in glob.glob(text)]
        if not files:
            raise DataFormatError(f"{text}: the pattern matches no file; check the folder and the quotes")
        return _frame_files(files, label=text)
    path = Path(text)
    if path.is_dir():
        files = [p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES]
        if not files:
            raise DataFormatError(f"{path}: the folder holds no .vtu or .vtk frames")
        return _frame_files(files, label=text)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".pvd":
        return _pvd(path)
    if suffix in (".xdmf", ".xmf"):
        return _xdmf(path)
    if suffix in (".vtkhdf", ".hdf"):
        return _vtkhdf(path)
    if suffix in FRAME_SUFFIXES:
        return _frame_files([path], label=text)
    raise DataFormatError(
        f"{path}: unknown series format {suffix!r}; pass a .pvd, .xdmf, .vtkhdf, a folder or glob of .vtu/.vtk files"
    )


def _read_mesh(path: Path, where: str):
    import meshio

    if not path.is_file():
        raise DataFormatError(f"{where}: frame file {path} is missing")
    try:
        with _quiet():
            return meshio.read(path)
    except (Exception, SystemExit) as err:  # meshio raises many kinds for damaged files, even SystemExit
        why = "not readable as this format" if isinstance(err, SystemExit) else f"{type(err).__name__}: {err}"
        raise DataFormatError(f"{where}: cannot read frame {path} ({why}); check the file") from None


def _frame_files(files: list[Path], label: str) -> FrameSequence:
    """Per-frame files in the order of the number in their names; a gap in the numbers is a missing frame."""
    bad = [p for p in files if p.suffix.lower() not in FRAME_SUFFIXES]
    if bad:
        raise DataFormatError(f"{bad[0]}: per-frame files must be .vtu or .vtk (series: one .pvd/.xdmf/.vtkhdf each)")
    numbers = [re.findall(r"\d+", p.stem) for p in files]
    if len(files) > 1 and all(numbers):
        order = sorted(range(len(files)), key=lambda i: (int(numbers[i][-1]), files[i].name))
        files = [files[i] for i in order]
        index = np.array([int(numbers[i][-1]) for i in order])
        steps = np.diff(index)
        if (steps == 0).any():
            i = int(np.argmax(steps == 0))
            raise DataFormatError(f"{label}: frames {files[i]} and {files[i + 1]} carry the same number")
        if (steps != steps.min()).any():
            i = int(np.argmax(steps != steps.min()))
            raise DataFormatError(
                f"{label}: frame numbers jump from {index[i]} to {index[i + 1]} (step {steps.min()} elsewhere): "
                f"frame(s) missing after {files[i]}"
            )  # fmt: skip
    else:
        files = sorted(files)
    for p in files:
        if not p.is_file():
            raise DataFormatError(f"{label}: frame file {p} is missing")
    return FrameSequence(label, None, [str(p) for p in files], lambda i: _read_mesh(files[i], label))


def _pvd(path: Path) -> FrameSequence:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as err:
        raise DataFormatError(f"{path}: not a readable .pvd collection ({err})") from None
    entries = [(e.get("timestep"), e.get("part", "0"), e.get("file")) for e in root.iter("DataSet")]
    if not entries:
        raise DataFormatError(f"{path}: the collection lists no DataSet; is it a ParaView .pvd file?")
    if len({part for _, part, _ in entries}) > 1:
        raise DataFormatError(f"{path}: the collection holds several parts per time step; merge them into one "
                              "piece (ParaView: Merge Blocks) and export again")  # fmt: skip
    try:
        times = np.array([float(t) for t, _, _ in entries], np.float64)
    except (TypeError, ValueError):
        raise DataFormatError(f"{path}: a DataSet has no numeric timestep attribute") from None
    files = [path.parent / (f or "") for _, _, f in entries]
    for i, f in enumerate(files):
        if not entries[i][2] or not f.is_file():
            raise DataFormatError(f"{path}: frame {i} (t = {times[i]:g}) file {f} is missing")
    return FrameSequence(str(path), times, [str(f) for f in files], lambda i: _read_mesh(files[i], str(path)))


def _xdmf(path: Path) -> FrameSequence:
    import meshio

    try:
        with _quiet(), meshio.xdmf.TimeSeriesReader(str(path)) as reader:
            points, cells = reader.read_points_cells()
            steps = [reader.read_data(k) for k in range(reader.num_steps)]
    except (Exception, SystemExit) as err:
        raise DataFormatError(
            f"{path}: not a readable XDMF temporal collection ({type(err).__name__}: {err})"
        ) from None
    if not steps:
        raise DataFormatError(f"{path}: the XDMF file holds no time steps")
    times = np.array([float(t) for t, _, _ in steps], np.float64)

    def read(i: int):
        return meshio.Mesh(points, cells, point_data=steps[i][1], cell_data=steps[i][2])

    return FrameSequence(str(path), times, [f"{path} step {i}" for i in range(len(steps))], read)


def _vtkhdf(path: Path) -> FrameSequence:
    """Temporal VTKHDF UnstructuredGrid, one part per step (topology at step 0, checked against the others)."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DataFormatError(f"{path}: not an HDF5 file ({err})") from None
    with f:
        root = f.get("VTKHDF")
        kind = root.attrs.get("Type", b"") if root is not None else b""
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if root is None or kind != "UnstructuredGrid":
            raise DataFormatError(f"{path}: not a VTKHDF UnstructuredGrid (group /VTKHDF with Type attribute)")
        if "Steps" not in root:
            raise DataFormatError(f"{path}: the VTKHDF file has no /VTKHDF/Steps; it is one frame, not a time series")
        try:
            return _vtkhdf_steps(path, root)
        except (KeyError, ValueError, IndexError, TypeError, OSError) as err:
            raise DataFormatError(f"{path}: incomplete temporal VTKHDF ({err}); export it again") from None


def _vtkhdf_steps(path: Path, root) -> FrameSequence:
    import meshio

    steps = root["Steps"]
    times = np.asarray(steps["Values"][()], np.float64)
    parts, first_part = steps["NumberOfParts"][()], steps["PartOffsets"][()]
    if (parts != 1).any():
        raise DataFormatError(f"{path}: {int(parts.max())} parts in a step; meshsim imports one part per step")
    point_offsets = steps["PointOffsets"][()]
    cell_offsets = steps["CellOffsets"][()].reshape(len(times), -1)[:, 0]
    conn_offsets = steps["ConnectivityIdOffsets"][()].reshape(len(times), -1)[:, 0]
    counts = root["NumberOfPoints"][()][first_part]
    if (counts != counts[0]).any():
        i = int(np.argmax(counts != counts[0]))
        raise DataFormatError(f"{path}: step {i} has {counts[i]} points, step 0 has {counts[0]}; node counts must stay")
    num_nodes = int(counts[0])
    p, c, k = int(first_part[0]), int(cell_offsets[0]), int(conn_offsets[0])
    if ((first_part != p) | (cell_offsets != c) | (conn_offsets != k)).any():
        raise DataFormatError(f"{path}: the cells change between steps; meshsim needs one mesh for all frames")
    num_cells = int(root["NumberOfCells"][p])
    types = root["Types"][c : c + num_cells]
    offsets = root["Offsets"][c + p : c + p + num_cells + 1]
    connectivity = root["Connectivity"][k : k + int(root["NumberOfConnectivityIds"][p])]
    sizes = np.diff(offsets)
    cells = []
    for vtk_type in np.unique(types):
        rows = types == vtk_type
        width = int(sizes[rows][0])
        if (sizes[rows] != width).any():
            raise DataFormatError(f"{path}: cells of VTK type {vtk_type} have different sizes")
        index = (offsets[:-1][rows] - offsets[0])[:, None] + np.arange(width)
        cells.append((VTK_CELL_NAMES.get(int(vtk_type), f"vtk{int(vtk_type)}"), connectivity[index]))
    points = root["Points"][()]
    point_data = {}
    data_offsets = steps.get("PointDataOffsets", {})
    for name, arr in root.get("PointData", {}).items():
        values = arr[()]
        starts = data_offsets[name][()] if name in data_offsets else np.zeros(len(times), np.int64)
        point_data[name] = (values, starts)
    if len(points) < int(point_offsets.max()) + num_nodes:
        raise DataFormatError(f"{path}: /VTKHDF/Points holds fewer points than the steps point at (truncated?)")

    def read(i: int):
        start = int(point_offsets[i])
        data = {n: v[int(s[i]) : int(s[i]) + num_nodes] for n, (v, s) in point_data.items()}
        return meshio.Mesh(points[start : start + num_nodes], cells, point_data=data)

    return FrameSequence(str(path), times, [f"{path} step {i}" for i in range(len(times))], read)
