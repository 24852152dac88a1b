"""FrameSource: what the viewer draws is exactly what the file holds, and derived fields are right."""

from collections import Counter

import h5py
import numpy as np
import pytest
from meshsim.viewer.sample import grid_tetrahedra, grid_triangles, sample_trajectory
from meshsim.viewer.source import FrameSource

from meshsim.datasets import Trajectory, TrajectoryFile, TrajectoryWriter
from meshsim.errors import DataFormatError
from meshsim.mesh.topology import boundary_facets


def faces_of(tet):
    return [[tet[j] for j in range(4) if j != skip] for skip in range(4)]


def brute_force_boundary(tets):
    counts = Counter(tuple(sorted(face)) for tet in tets.tolist() for face in faces_of(tet))
    return {face for face, n in counts.items() if n == 1}


@pytest.mark.parametrize("keep", [1.0, 0.7])
def test_boundary_faces_match_brute_force_and_point_outward(keep):
    points, tets = grid_tetrahedra(4, 3, 5, size=(1.0, 0.5, 1.5))
    tets = tets[np.random.default_rng(0).random(len(tets)) < keep]  # holes make inner faces boundary too
    faces = boundary_facets(tets)  # what FrameSource.surface draws for tetrahedra
    assert {tuple(sorted(f)) for f in faces.tolist()} == brute_force_boundary(tets)
    assert len(faces) == len(brute_force_boundary(tets))
    # Outward: the face normal points away from the one tetrahedron that owns it.
    owner = {tuple(sorted(f)): tet for tet in tets.tolist() for f in faces_of(tet)}
    for face in faces[:200]:
        a, b, c = points[face]
        opposite = points[(set(owner[tuple(sorted(face))]) - set(face.tolist())).pop()]
        assert np.dot(np.cross(b - a, c - a), opposite - a) < 0


def test_positions_fields_and_error_equal_the_file(tri_rollout):
    with FrameSource(tri_rollout) as source, TrajectoryFile(tri_rollout) as store:
        traj = store.read("00001")
        assert source.ids == ["00000", "00001"] and source.is_rollout
        for t in (0, 5, 11):
            np.testing.assert_array_equal(source.positions("00001", t, "gt"), traj.world_pos[t])
            np.testing.assert_array_equal(source.positions("00001", t, "pred"), traj.pred_world_pos[t])
            np.testing.assert_allclose(source.field("00001", "error", t),
                                       np.linalg.norm(traj.pred_world_pos[t] - traj.world_pos[t], axis=1), rtol=1e-6)
            np.testing.assert_array_equal(source.field("00001", "height", t, "pred"), traj.pred_fields["height"][t])
            np.testing.assert_allclose(source.field("00001", "velocity", t),
                                       np.linalg.norm(traj.fields["velocity"][t], axis=1), rtol=1e-6)
            np.testing.assert_allclose(source.field("00001", "displacement", t, "gt"),
                                       np.linalg.norm(traj.world_pos[t] - traj.mesh_pos, axis=1), rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(source.surface("00001"), traj.cells)
        assert source.fields("00001")["velocity"] == ["gt"]  # stored for the ground truth only


def test_speed_is_the_central_difference_of_positions(tri_rollout):
    """The sample's velocity is analytic; a central difference matches it to O((omega dt)^2)."""
    with FrameSource(tri_rollout) as source, TrajectoryFile(tri_rollout) as store:
        velocity = store.read("00000").fields["velocity"]
        scale = np.linalg.norm(velocity, axis=2).max()
        for t in range(1, 11):
            speed = source.field("00000", "speed", t, "gt")
            exact = np.linalg.norm(velocity[t], axis=1)
            assert np.abs(speed - exact).max() <= 0.02 * scale
        # One-sided at the ends: forward difference at frame 0.
        dt = source.info("00000")["dt"]
        forward = np.linalg.norm(source.positions("00000", 1) - source.positions("00000", 0), axis=1) / dt
        np.testing.assert_allclose(source.field("00000", "speed", 0), forward, rtol=1e-5)


def test_fixed_ranges_and_bounds_cover_every_frame(tri_rollout):
    with FrameSource(tri_rollout) as source:
        for name in ("error", "height", "speed"):
            lo, hi = source.field_range("00000", name)
            for t in range(12):
                for src in source.fields("00000")[name]:
                    values = source.field("00000", name, t, src)
                    assert lo - 1e-6 <= values.min() and values.max() <= hi + 1e-6
        assert source.field_range("00000", "error")[0] == 0.0  # magnitudes start at zero
        lo, hi = map(np.array, source.bounds("00000"))
        for t in range(12):
            for src in ("gt", "pred"):
                p = source.positions("00000", t, src)
                assert (p >= lo - 1e-6).all() and (p <= hi + 1e-6).all()


def test_two_dimensional_data_is_padded_with_z_zero(tmp_path):
    points, tris = grid_triangles(5, 4)
    world = np.stack([points + 0.01 * t for t in range(3)]).astype(np.float32)
    path = tmp_path / "flat.h5"
    with TrajectoryWriter(path, durable=False) as writer:
        writer.write("a", Trajectory(cells=tris, mesh_pos=points.astype(np.float32), node_type=np.zeros(20, np.int32),
                                     world_pos=world, dt=0.1))
    with FrameSource(path) as source:
        frame = source.positions("a", 2)
        assert frame.shape == (20, 3) and not frame[:, 2].any()
        np.testing.assert_array_equal(frame[:, :2], world[2])
        assert source.info("a")["sources"] == ["gt"] and "error" not in source.fields("a")


def test_tetrahedra_are_drawn_by_their_surface(tet_rollout):
    with FrameSource(tet_rollout) as source:
        surface = source.surface("00000")
        assert surface.dtype == np.uint32 and surface.shape[1] == 3
        assert {tuple(sorted(f)) for f in surface.tolist()} == brute_force_boundary(source.cells("00000"))


def test_broken_files_are_refused_on_open(tmp_path, tri_rollout):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(DataFormatError, match="not a readable HDF5"):
        FrameSource(garbage)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "something else"
    with pytest.raises(DataFormatError, match="format"):
        FrameSource(other)
    # A NaN in the last frame of a prediction: found before anything is served.
    broken = tmp_path / "nan.h5"
    broken.write_bytes(open(tri_rollout, "rb").read())
    with h5py.File(broken, "r+") as f:
        f["trajectories/00000/pred/world_pos"][11, 3, 1] = np.nan
    with pytest.raises(DataFormatError, match="non-finite"):
        FrameSource(broken)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(open(tri_rollout, "rb").read()[:5000])
    with pytest.raises(DataFormatError):
        FrameSource(truncated)


def test_sample_particles_have_one_cell_per_node():
    traj = sample_trajectory("particles", nodes=100, frames=3, rollout=False)
    assert traj.cells.shape == (100, 1) and traj.pred_world_pos is None
