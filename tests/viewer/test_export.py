"""Exports read back with meshio and h5py hold exactly the trajectory's frames."""

import os
import xml.etree.ElementTree as ET

import h5py
import meshio
import numpy as np
import pytest
import trimesh
from meshsim.viewer.colormap import colorize
from meshsim.viewer.export import export_trajectory
from meshsim.viewer.source import FrameSource

from meshsim.cli import main
from meshsim.datasets import TrajectoryFile
from meshsim.errors import ConfigError, OutputError


@pytest.fixture(scope="module")
def tet(tet_rollout):
    with TrajectoryFile(tet_rollout) as store:
        return store.read("00000")


def test_vtkhdf_temporal_single_part_layout(tet_rollout, tet, tmp_path):
    out = tmp_path / "tet.vtkhdf"
    assert export_trajectory(tet_rollout, "vtkhdf", output=out) == [str(out)]
    T, N = tet.world_pos.shape[:2]
    M = len(tet.cells)
    with h5py.File(out) as f:
        root = f["VTKHDF"]
        assert list(root.attrs["Version"]) == [2, 0] and root.attrs["Type"] == b"UnstructuredGrid"
        assert list(root["NumberOfPoints"]) == [N] and list(root["NumberOfCells"]) == [M]
        assert list(root["NumberOfConnectivityIds"]) == [4 * M]
        np.testing.assert_array_equal(root["Connectivity"][()].reshape(-1, 4), tet.cells)
        np.testing.assert_array_equal(root["Offsets"][()], np.arange(M + 1) * 4)
        assert (root["Types"][()] == 10).all()  # VTK_TETRA
        steps = root["Steps"]
        assert steps.attrs["NSteps"] == T
        np.testing.assert_allclose(steps["Values"][()], np.arange(T) * tet.dt)
        np.testing.assert_array_equal(steps["PointOffsets"][()], np.arange(T) * N)
        assert not steps["PartOffsets"][()].any() and (steps["NumberOfParts"][()] == 1).all()
        assert steps["CellOffsets"].shape == (T, 1) and not steps["CellOffsets"][()].any()
        assert steps["ConnectivityIdOffsets"].shape == (T, 1) and not steps["ConnectivityIdOffsets"][()].any()
        points = root["Points"][()].reshape(T, N, 3)
        np.testing.assert_array_equal(points, tet.pred_world_pos)  # rollouts export the prediction by default
        error = root["PointData/error"][()].reshape(T, N)
        np.testing.assert_allclose(error, np.linalg.norm(tet.pred_world_pos - tet.world_pos, axis=2), rtol=1e-6)
        np.testing.assert_array_equal(root["PointData/node_type"][()], tet.node_type)
        assert not steps["PointDataOffsets/node_type"][()].any()  # static: every step reuses it
        np.testing.assert_array_equal(steps["PointDataOffsets/height"][()], np.arange(T) * N)


def test_xdmf_displacement_series_is_written_beside_not_in_cwd(tet_rollout, tet, tmp_path, monkeypatch):
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "out" / "tet.xdmf"
    out.parent.mkdir()
    written = export_trajectory(tet_rollout, "xdmf", output=out, source="gt")
    assert written == [str(out), str(out.with_suffix(".h5"))]
    assert os.listdir(cwd) == [] and os.getcwd() == str(cwd)  # meshio's cwd bug worked around, cwd restored
    assert sorted(os.listdir(out.parent)) == ["tet.h5", "tet.xdmf"]
    with meshio.xdmf.TimeSeriesReader(out) as reader:
        points, cells = reader.read_points_cells()
        np.testing.assert_allclose(points, tet.mesh_pos, atol=1e-7)
        np.testing.assert_array_equal(cells[0].data, tet.cells)
        assert reader.num_steps == len(tet.world_pos)
        for t in range(reader.num_steps):
            time, point_data, _ = reader.read_data(t)
            assert time == pytest.approx(t * tet.dt)
            np.testing.assert_allclose(points + point_data["displacement"], tet.world_pos[t], atol=1e-6)
            np.testing.assert_allclose(point_data["velocity"], tet.fields["velocity"][t], rtol=1e-6)


def test_pvd_one_vtu_per_step(tri_rollout, tmp_path):
    out = tmp_path / "tri.pvd"
    export_trajectory(tri_rollout, "pvd", output=out, traj="00001")
    entries = ET.parse(out).getroot().find("Collection").findall("DataSet")
    with TrajectoryFile(tri_rollout) as store:
        traj = store.read("00001")
    assert len(entries) == len(traj.world_pos)
    for t, entry in enumerate(entries):
        assert float(entry.get("timestep")) == pytest.approx(t * traj.dt)
        mesh = meshio.read(out.parent / entry.get("file"))
        np.testing.assert_array_equal(mesh.points, traj.pred_world_pos[t])
        np.testing.assert_array_equal(mesh.cells_dict["triangle"], traj.cells)
        np.testing.assert_allclose(mesh.point_data["height"], traj.pred_fields["height"][t])


@pytest.mark.parametrize("fmt", ["ply", "glb", "obj"])
def test_single_frame_meshes_with_vertex_colours(tet_rollout, tet, tmp_path, fmt):
    out = tmp_path / f"frame.{fmt}"
    export_trajectory(tet_rollout, fmt, output=out, frame=-1, color="error")
    loaded = trimesh.load(out, process=False, force="mesh")
    with FrameSource(tet_rollout) as source:
        surface = source.surface("00000")
        used = np.unique(surface)
        expected = colorize(source.field("00000", "error", 7), *source.field_range("00000", "error"))
    if fmt == "obj":  # OBJ drops unreferenced (interior) vertices on load: compare the surface geometry
        assert len(loaded.faces) == len(surface)
        expected_points = np.sort(tet.pred_world_pos[-1][used], axis=0)
        np.testing.assert_allclose(np.sort(loaded.vertices, axis=0), expected_points, atol=1e-6)
        return
    np.testing.assert_allclose(loaded.vertices[used], tet.pred_world_pos[-1][used], atol=1e-6)
    np.testing.assert_array_equal(loaded.faces, surface)
    np.testing.assert_array_equal(loaded.visual.vertex_colors[used], expected[used])


def test_particles_export_points(particles_gt, tmp_path):
    out = tmp_path / "p.ply"
    export_trajectory(particles_gt, "ply", output=out, frame=2)
    cloud = trimesh.load(out)
    with TrajectoryFile(particles_gt) as store:
        np.testing.assert_allclose(cloud.vertices, store.frame("00000", 2), atol=1e-6)
    out = tmp_path / "p.vtkhdf"
    export_trajectory(particles_gt, "vtkhdf", output=out)
    with h5py.File(out) as f:
        assert (f["VTKHDF/Types"][()] == 1).all()  # VTK_VERTEX


def test_refusals_leave_existing_files_alone(tri_rollout, tmp_path):
    out = tmp_path / "keep.vtkhdf"
    out.write_bytes(b"precious")
    with pytest.raises(OutputError, match="--force"):
        export_trajectory(tri_rollout, "vtkhdf", output=out)
    assert out.read_bytes() == b"precious"
    export_trajectory(tri_rollout, "vtkhdf", output=out, force=True)
    assert h5py.is_hdf5(out)
    with pytest.raises(ConfigError, match="suffix|end in"):
        export_trajectory(tri_rollout, "ply", output=tmp_path / "x.obj")
    with pytest.raises(ConfigError, match="frame"):
        export_trajectory(tri_rollout, "ply", output=tmp_path / "x.ply", frame=12)
    with pytest.raises(ConfigError, match="--frame"):
        export_trajectory(tri_rollout, "vtkhdf", output=tmp_path / "y.vtkhdf", frame=3)
    (tmp_path / "afile").write_text("")
    with pytest.raises(OutputError, match="afile"):
        export_trajectory(tri_rollout, "pvd", output=tmp_path / "afile" / "x.pvd")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "keep.vtkhdf"]  # no temporaries left behind
    export_trajectory(tri_rollout, "ply", output=tmp_path / "new" / "deeper" / "x.ply")  # folders are created
    assert (tmp_path / "new" / "deeper" / "x.ply").is_file()


def test_cli_export_default_output_beside_input(tri_rollout, tmp_path, capsys):
    local = tmp_path / "run.h5"
    local.write_bytes(open(tri_rollout, "rb").read())
    assert main(["export", str(local), "--format", "glb", "--traj", "00001", "--frame", "3"]) == 0
    assert (tmp_path / "run-00001-t0003.glb").is_file()
    assert "wrote" in capsys.readouterr().out
    assert main(["export", str(local), "--format", "glb", "--traj", "00001", "--frame", "3"]) == 2
    assert "exists" in capsys.readouterr().err


def test_vtk_reads_every_step_when_available(tet_rollout, tet, tmp_path):
    """VTK's own readers (optional: skipped where the vtk wheel is not installed, as in CI)."""
    vtk = pytest.importorskip("vtk")
    from vtk.util.numpy_support import vtk_to_numpy

    export_trajectory(tet_rollout, "vtkhdf", output=tmp_path / "t.vtkhdf")
    reader = vtk.vtkHDFReader()
    reader.SetFileName(str(tmp_path / "t.vtkhdf"))
    reader.UpdateInformation()
    steps = reader.GetOutputInformation(0).Get(vtk.vtkStreamingDemandDrivenPipeline.TIME_STEPS())
    assert len(steps) == len(tet.world_pos)
    for t, time in enumerate(steps):
        reader.UpdateTimeStep(time)
        output = reader.GetOutput()
        np.testing.assert_array_equal(vtk_to_numpy(output.GetPoints().GetData()), tet.pred_world_pos[t])
        assert output.GetNumberOfCells() == len(tet.cells)
    export_trajectory(tet_rollout, "xdmf", output=tmp_path / "t.xdmf", source="gt")
    xdmf = vtk.vtkXdmfReader()
    xdmf.SetFileName(str(tmp_path / "t.xdmf"))
    xdmf.UpdateInformation()
    times = xdmf.GetOutputInformation(0).Get(vtk.vtkStreamingDemandDrivenPipeline.TIME_STEPS())
    xdmf.UpdateTimeStep(times[-1])
    grid = xdmf.GetOutput()
    grid = grid if grid.IsA("vtkUnstructuredGrid") else grid.GetBlock(0)
    moved = vtk_to_numpy(grid.GetPoints().GetData()) + vtk_to_numpy(grid.GetPointData().GetArray("displacement"))
    np.testing.assert_allclose(moved, tet.world_pos[-1], atol=1e-6)
