"""`meshsim data import-series`: time series from other FEM codes (.pvd, XDMF, VTKHDF, .vtu/.vtk frames)."""

import json
import subprocess
import sys

import h5py
import meshio
import numpy as np
import pytest
from meshsim.viewer import paraview
from meshsim.viewer.export import export_trajectory

from meshsim import cli
from meshsim.datasets import Trajectory, TrajectoryFile, TrajectoryWriter
from meshsim.datasets.series import import_series
from meshsim.mesh import primitives

FRAMES = 5


def plate(dim=2):
    """A small moving mesh: frame 0 at rest (the reference), then random motion; HANDLE nodes at x = 0."""
    mesh = primitives.rectangle((1.0, 0.5), (4, 3)) if dim == 2 else primitives.box((1.0, 0.5, 0.5), (2, 2, 2))
    rng = np.random.default_rng(dim)
    pos = mesh.points.astype(np.float32)
    world = (pos[None] + rng.normal(scale=0.01, size=(FRAMES, *pos.shape))).astype(np.float32)
    world[0] = pos
    return Trajectory(
        cells=mesh.cells.astype(np.int32), mesh_pos=pos, node_type=np.where(pos[:, 0] <= 0, 3, 0).astype(np.int32),
        world_pos=world, dt=0.01,
        fields={"stress": rng.random((FRAMES, len(pos))).astype(np.float32),
                "velocity": rng.normal(size=(FRAMES, len(pos), dim)).astype(np.float32)},
    )  # fmt: skip


def read_back(path):
    with TrajectoryFile(path) as f:
        assert f.ids == ["00000"]
        return f.read("00000")


def assert_arrays(a, b):
    for name in ("cells", "mesh_pos", "node_type", "world_pos"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.dt == b.dt and sorted(a.fields) == sorted(b.fields)
    for name in a.fields:
        np.testing.assert_array_equal(a.fields[name], b.fields[name], err_msg=name)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("fmt", ["pvd", "xdmf", "vtkhdf"])
def test_meshsim_exports_import_back_to_identical_arrays(tmp_path, fmt, dim):
    traj = plate(dim)
    with TrajectoryWriter(tmp_path / "src.h5") as w:
        w.write("00000", traj)
    exported = export_trajectory(tmp_path / "src.h5", fmt)[0]
    import_series([exported], tmp_path / "back.h5")
    assert_arrays(traj, read_back(tmp_path / "back.h5"))


def pad3(traj):
    """VTU/VTK files hold 3-D points: a 2-D mesh gets z = 0 (as other codes write it)."""
    if traj.mesh_pos.shape[1] == 3:
        return traj
    pad = [(0, 0)] * (traj.world_pos.ndim - 1) + [(0, 1)]
    return Trajectory(cells=traj.cells, mesh_pos=np.pad(traj.mesh_pos, pad[1:]), node_type=traj.node_type,
                      world_pos=np.pad(traj.world_pos, pad), dt=traj.dt, fields=traj.fields)  # fmt: skip


def meshio_frames(traj, displaced=False):
    cells = [({3: "triangle", 4: "tetra"}[traj.cells.shape[1]], traj.cells)]
    traj = pad3(traj)
    for t in range(traj.num_frames):
        data = {"S_Mises": traj.fields["stress"][t] / 1e6, "id": np.arange(traj.num_nodes, dtype=np.int32)}
        if displaced:
            yield meshio.Mesh(traj.mesh_pos, cells, point_data={**data, "U": traj.world_pos[t] - traj.mesh_pos})
        else:
            yield meshio.Mesh(traj.world_pos[t], cells, point_data=data)


def write_source(traj, fmt, folder):
    """The series in `fmt`, written with meshio only (as another code would), no meshsim writer involved."""
    times = np.arange(traj.num_frames) * traj.dt
    if fmt in ("vtu", "vtk"):
        for t, mesh in enumerate(meshio_frames(traj)):
            meshio.write(folder / f"plate_{t:03d}.{fmt}", mesh)
        return [str(p) for p in sorted(folder.glob(f"plate_*.{fmt}"))]
    if fmt == "pvd":
        (folder / "f").mkdir()
        entries = []
        for t, mesh in enumerate(meshio_frames(traj)):
            meshio.write(folder / f"f/p{t}.vtu", mesh)
            entries.append(f'<DataSet timestep="{float(times[t])!r}" part="0" file="f/p{t}.vtu"/>')
        path = folder / "plate.pvd"
        path.write_text('<VTKFile type="Collection"><Collection>' + "".join(entries) + "</Collection></VTKFile>")
        return [str(path)]
    if fmt == "xdmf":
        path = folder / "plate.xdmf"
        with meshio.xdmf.TimeSeriesWriter(path) as writer:
            frames = list(meshio_frames(traj, displaced=True))
            writer.write_points_cells(traj.mesh_pos, frames[0].cells)
            for t, mesh in enumerate(frames):
                writer.write_data(times[t], point_data=mesh.point_data)
        return [str(path)]
    path = folder / "plate.vtkhdf"  # temporal VTKHDF through meshsim's layout helper fed by meshio meshes
    frames = list(meshio_frames(traj))
    series = paraview.Series(pad3(traj).mesh_pos, traj.cells, times,
                             lambda t: (frames[t].points, {"S_Mises": frames[t].point_data["S_Mises"]}),
                             {})  # fmt: skip
    paraview.write_vtkhdf(series, path)
    return [str(path)]


@pytest.mark.parametrize("fmt", ["vtu", "vtk", "pvd", "xdmf", "vtkhdf"])
def test_series_built_with_meshio_imports_in_each_format(tmp_path, monkeypatch, fmt):
    traj = plate(2)
    monkeypatch.chdir(tmp_path)  # meshio's XDMF writer puts the heavy data in the working folder (meshio #1442)
    sources = write_source(traj, fmt, tmp_path)
    dt = ["--dt", "0.01"] if fmt in ("vtu", "vtk") else []
    disp = ["--displacement", "U"] if fmt == "xdmf" else []
    args = ["data", "import-series", *sources, "-o", str(tmp_path / "out.h5"), *dt, *disp,
            "--field", "stress=S_Mises*1e6", "--node-type", "HANDLE:x<=0"]  # fmt: skip
    assert cli.main(args) == 0
    back = read_back(tmp_path / "out.h5")
    np.testing.assert_array_equal(back.cells, traj.cells)
    np.testing.assert_array_equal(back.node_type, traj.node_type)
    np.testing.assert_allclose(back.world_pos, traj.world_pos, rtol=0, atol=1e-6)
    np.testing.assert_allclose(back.fields["stress"], traj.fields["stress"], rtol=1e-6)
    assert sorted(back.fields) == ["stress"] and back.dt == pytest.approx(0.01, rel=1e-9)


def test_node_type_rules_cell_sets_obstacle_and_inspect(tmp_path, capsys):
    traj = plate(2)
    cells = [("triangle", traj.cells)]
    fixed = (traj.mesh_pos[:, 1] >= 0.5).astype(np.float32)
    for t in range(FRAMES):
        grip = [(np.arange(len(traj.cells)) == 0).astype(np.int32)]
        mesh = meshio.Mesh(pad3(traj).world_pos[t], cells, point_data={"fixed": fixed}, cell_data={"grip": grip})
        meshio.write(tmp_path / f"s{t}.vtu", mesh)
    obstacle = meshio.Mesh(np.array([[2.0, 0, 0], [3, 0, 0], [2, 1, 0]]), [("triangle", np.array([[0, 1, 2]]))])
    obstacle.write(tmp_path / "wall.vtu")
    files = [str(tmp_path / f"s{t}.vtu") for t in range(FRAMES)]
    rules = ["--node-type", "HANDLE:x<=0", "--node-type", "WALL_BOUNDARY:fixed", "--node-type", "7:grip",
             "--node-type", "OUTFLOW:x==1,y<0.2"]  # fmt: skip
    out = tmp_path / "o.h5"
    assert cli.main(["data", "import-series", *files, "-o", str(out), "--dt", "0.5", *rules,
                     "--obstacle", str(tmp_path / "wall.vtu")]) == 0  # fmt: skip
    back = read_back(out)
    n = traj.num_nodes
    assert (
        back.num_nodes == n + 3
        and (back.node_type[n:] == 1).all()
        and (back.world_pos[:, n:] == [[2, 0], [3, 0], [2, 1]]).all()
    )
    grip = np.unique(traj.cells[0])
    assert (back.node_type[grip] == 7).all()
    rest = np.setdiff1d(np.arange(n), grip)
    pos = traj.mesh_pos[rest]
    expected = np.select([(pos[:, 0] >= 1) & (pos[:, 1] < 0.2), pos[:, 1] >= 0.5, pos[:, 0] <= 0], [5, 6, 3], 0)
    np.testing.assert_array_equal(back.node_type[rest], expected)
    capsys.readouterr()
    assert cli.main(["data", "inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "OBSTACLE: 3" in text and "SYMMETRIC: 3" in text and "WALL_BOUNDARY" in text


def frames_with(tmp_path, edit):
    """Five .vtu frames of `plate`, frame 2 changed by `edit(mesh)`; returns the file names."""
    traj = plate(2)
    files = []
    for t, mesh in enumerate(meshio_frames(traj)):
        if t == 2:
            edit(mesh)
        files.append(str(tmp_path / f"f_{t}.vtu"))
        meshio.write(files[-1], mesh)
    return files


def nan_stress(mesh):
    mesh.point_data["S_Mises"][3] = np.nan


def fewer_nodes(mesh):
    mesh.points = mesh.points[:-1]
    mesh.point_data = {}


def mixed_cells(mesh):
    mesh.cells = [
        meshio.CellBlock("triangle", mesh.cells[0].data[:-2]),
        meshio.CellBlock("quad", np.array([[0, 1, 5, 4]])),
    ]


BAD = {
    "missing frame": (
        lambda p: [f for f in frames_with(p, lambda m: None) if not f.endswith("_3.vtu")],
        [],
        "frame numbers jump from 2 to 4",
    ),
    "node count": (lambda p: frames_with(p, fewer_nodes), [], "nodes, frame 0 has 20"),
    "NaN": (lambda p: frames_with(p, nan_stress), [], "'S_Mises' holds NaN or inf at node 3"),
    "mixed cells": (lambda p: frames_with(p, mixed_cells)[2:3], [], "cells of kind(s) triangle: 22, quad: 1"),
    "unknown field": (lambda p: frames_with(p, lambda m: None), ["--field", "s=Mises"], "no point array 'Mises'"),
    "unknown node-type array": (
        lambda p: frames_with(p, lambda m: None),
        ["--node-type", "HANDLE:clamp"],
        "no point array or cell set named 'clamp'",
    ),
    "bad rule": (lambda p: frames_with(p, lambda m: None), ["--node-type", "HANDLE:w<=0"], "is not a bound like"),
    "no dt": (lambda p: frames_with(p, lambda m: None)[:1] + ["--dt", "-1"], [], "--dt must be a positive number"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, case):
    make, extra, message = BAD[case]
    (tmp_path / "in").mkdir()
    sources = make(tmp_path / "in")
    (tmp_path / "out").mkdir()
    dt = [] if "--dt" in sources else ["--dt", "0.1"]
    assert cli.main(["data", "import-series", *sources, "-o", str(tmp_path / "out/x.h5"), *dt, *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("meshsim: error: ") and message in err, err
    assert list((tmp_path / "out").iterdir()) == []


def test_uneven_times_mixed_vtkhdf_steps_and_existing_output(tmp_path, capsys):
    traj = plate(2)
    for t, mesh in enumerate(meshio_frames(traj)):
        meshio.write(tmp_path / f"p{t}.vtu", mesh)
    steps = [0.0, 0.1, 0.2, 0.4, 0.5]  # a frame missing at t = 0.3
    entries = "".join(f'<DataSet timestep="{s}" file="p{t}.vtu"/>' for t, s in enumerate(steps))
    (tmp_path / "a.pvd").write_text(f"<VTKFile><Collection>{entries}</Collection></VTKFile>")
    assert cli.main(["data", "import-series", str(tmp_path / "a.pvd"), "-o", str(tmp_path / "x.h5")]) == 2
    assert "0.2 -> 0.4 at frame 3" in capsys.readouterr().err
    (tmp_path / "x.h5").write_bytes(b"")
    assert cli.main(["data", "import-series", str(tmp_path / "p*.vtu"), "-o", str(tmp_path / "x.h5"), "--dt", "1"]) == 2
    assert "exists" in capsys.readouterr().err and (tmp_path / "x.h5").read_bytes() == b""
    with h5py.File(tmp_path / "static.vtkhdf", "w") as f:
        f.create_group("VTKHDF").attrs.create("Type", np.bytes_("UnstructuredGrid"))
    assert cli.main(["data", "import-series", str(tmp_path / "static.vtkhdf"), "-o", str(tmp_path / "y.h5")]) == 2
    assert "not a time series" in capsys.readouterr().err


def test_glob_and_folder_sources_and_json_through_the_real_cli(tmp_path):
    traj = plate(2)
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        for t, mesh in enumerate(meshio_frames(traj)):
            meshio.write(tmp_path / sub / f"step{t * 10}.vtu", mesh)
    out = subprocess.run([sys.executable, "-m", "meshsim", "data", "import-series", str(tmp_path / "a"),
                          str(tmp_path / "b/step*.vtu"), "-o", str(tmp_path / "o.h5"), "--dt", "0.01", "--json"],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["imported"] == 2 and result["trajectories"][1]["frames"] == FRAMES
    with TrajectoryFile(tmp_path / "o.h5") as f:
        np.testing.assert_array_equal(f.read("00001").world_pos, traj.world_pos)
        assert sorted(f.read("00000").fields) == ["S_Mises"]


@pytest.mark.parametrize("suffix", [".vtu", ".vtk", ".pvd", ".xdmf", ".vtkhdf", ".txt"])
def test_damaged_or_foreign_files_are_one_line(tmp_path, capsys, suffix):
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(np.random.default_rng(0).bytes(300))
    assert cli.main(["data", "import-series", str(bad), "-o", str(tmp_path / "o.h5"), "--dt", "0.1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("meshsim: error: ") and str(bad) in err, err
    assert not (tmp_path / "o.h5").exists()


def test_truncated_vtkhdf_and_unknown_displacement(tmp_path, capsys):
    traj = plate(2)
    with TrajectoryWriter(tmp_path / "src.h5") as w:
        w.write("00000", traj)
    path = export_trajectory(tmp_path / "src.h5", "vtkhdf")[0]
    with h5py.File(path, "r+") as f:
        points = f["VTKHDF/Points"][: traj.num_nodes * 2]
        del f["VTKHDF/Points"]
        f["VTKHDF/Points"] = points
    assert cli.main(["data", "import-series", path, "-o", str(tmp_path / "o.h5")]) == 2
    assert "fewer points than the steps point at" in capsys.readouterr().err
    pvd = export_trajectory(tmp_path / "src.h5", "pvd")[0]
    assert cli.main(["data", "import-series", pvd, "-o", str(tmp_path / "o.h5"), "--displacement", "U"]) == 2
    assert "--displacement 'U': no such point array; the file has: displacement, node_type" in capsys.readouterr().err
    assert not (tmp_path / "o.h5").exists()


def test_private_store_of_a_killed_import_is_removed_by_the_next(tmp_path):
    traj = plate(2)
    for t, mesh in enumerate(meshio_frames(traj)):
        meshio.write(tmp_path / f"p{t}.vtu", mesh)
    stale = tmp_path / ".o.h5.999999999.series.tmp"  # no such process
    stale.write_bytes(b"half an import")
    import_series([tmp_path / "p*.vtu"], tmp_path / "o.h5", dt=0.1)  # paths as Path objects too
    assert not stale.exists() and sorted(p.name for p in tmp_path.glob(".*")) == []
    assert read_back(tmp_path / "o.h5").num_frames == FRAMES
