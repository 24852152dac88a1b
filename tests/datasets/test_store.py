"""Round trips and writer behaviour of the HDF5 trajectory store."""

import h5py
import numpy as np
import pytest

from meshsim.datasets import FORMAT_ROLLOUT, Trajectory, TrajectoryFile, TrajectoryWriter, summarize
from meshsim.errors import DataFormatError, OutputError


def test_round_trip_keeps_every_array_attr_and_dtype(tmp_path, make_traj, same):
    path = tmp_path / "store.h5"
    trajs = {f"{i:05d}": make_traj(seed=i, dim=2 + i % 2, k=3 + i % 2) for i in range(3)}
    with TrajectoryWriter(path, attrs={"source": "unit test"}) as w:
        for traj_id, traj in trajs.items():
            w.write(traj_id, traj)
    with TrajectoryFile(path) as f:
        assert f.ids == sorted(trajs) and not f.is_rollout
        assert f.attrs["source"] == "unit test" and f.attrs["length_unit"] == "m" and f.attrs["time_unit"] == "s"
        for traj_id, traj in trajs.items():
            back = f.read(traj_id)
            same(traj, back)
            assert back.world_pos.dtype == np.float32 and back.cells.dtype == np.int32
            assert back.globals["kinetic_energy"].dtype == np.float64
            assert isinstance(back.attrs["clamped"], bool) and isinstance(back.attrs["seed"], int)
            assert f.num_frames(traj_id) == traj.num_frames
            np.testing.assert_array_equal(f.frame(traj_id, -1), traj.world_pos[-1])
    with h5py.File(path) as raw:  # one frame per chunk, as the schema promises
        assert raw["trajectories/00000/world_pos"].chunks == (1, 12, 2)
        assert raw["trajectories/00001"].attrs["cell_type"] == "tetra"


def test_rollout_file_round_trip_and_pred_frames(tmp_path, make_traj, same):
    path = tmp_path / "rollout.h5"
    traj = make_traj(rollout=True)
    with TrajectoryWriter(path, rollout=True) as w:
        w.write("a", traj)
    with TrajectoryFile(path) as f:
        assert f.is_rollout and f.attrs["format"] == FORMAT_ROLLOUT
        back = f.read("a")
        np.testing.assert_array_equal(back.pred_world_pos, traj.pred_world_pos)
        np.testing.assert_array_equal(back.pred_fields["stress"], traj.pred_fields["stress"])
        np.testing.assert_array_equal(f.frame("a", 2, source="pred"), traj.pred_world_pos[2])
    with TrajectoryWriter(tmp_path / "plain.h5") as w, pytest.raises(DataFormatError, match="rollout file only"):
        w.write("a", traj)
    with pytest.raises(OutputError, match="rollout store"):
        TrajectoryWriter(path, rollout=False)


def test_writer_resumes_and_refuses_duplicates(tmp_path, make_traj, same):
    path = tmp_path / "s.h5"
    with TrajectoryWriter(path) as w:
        w.write("00000", make_traj(0))
    with TrajectoryWriter(path) as w:
        assert w.ids == ["00000"]
        with pytest.raises(OutputError, match="already in the store"):
            w.write("00000", make_traj(1))
        w.write("00001", make_traj(1))
    assert summarize(path)["num_trajectories"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_writer_validates_before_touching_the_file(tmp_path, make_traj, same):
    path = tmp_path / "s.h5"
    bad = make_traj()
    bad.world_pos[3, 4, 1] = np.nan
    with TrajectoryWriter(path) as w:
        with pytest.raises(DataFormatError, match=r"trajectory 'x'.*world_pos.*\[3, 4, 1\]"):
            w.write("x", bad)
        with pytest.raises(DataFormatError, match="not a valid name"):
            w.write("a/b", make_traj())
        assert w.ids == []
    (tmp_path / "afile").write_text("")
    with pytest.raises(OutputError, match="afile"):
        TrajectoryWriter(tmp_path / "afile" / "s.h5")
    with TrajectoryWriter(tmp_path / "new" / "deeper" / "s.h5") as w:  # the folder of an output is created
        w.write("000", make_traj())
    assert (tmp_path / "new" / "deeper" / "s.h5").is_file()
    with pytest.raises(DataFormatError, match="reserved"):
        TrajectoryWriter(path).write("y", Trajectory(**{**make_traj().__dict__, "attrs": {"dt": 1.0}}))


def test_cloth_like_trajectory_with_2d_reference_in_3d_world(tmp_path, make_traj, same):
    traj = make_traj(dim=2)
    traj.world_pos = np.concatenate([traj.world_pos, np.zeros_like(traj.world_pos[..., :1])], axis=-1)
    traj.fields.pop("velocity")
    with TrajectoryWriter(tmp_path / "c.h5") as w:
        w.write("c", traj)
    with TrajectoryFile(tmp_path / "c.h5") as f:
        assert f.read("c").world_pos.shape[-1] == 3


def test_batch_commits_all_at_once_and_an_error_inside_discards_it(tmp_path, make_traj):
    path = tmp_path / "b.h5"
    with TrajectoryWriter(path) as w:
        w.write("a", make_traj(0))
        with w.batch():
            w.write("b", make_traj(1))
            w.write("c", make_traj(2))
            assert w.pending == ["b", "c"] and w.ids == ["a"]
            with TrajectoryFile(path) as f:
                assert f.ids == ["a"]  # nothing visible before the batch ends
        assert w.ids == ["a", "b", "c"]
        with pytest.raises(RuntimeError), w.batch():
            w.write("d", make_traj(3))
            raise RuntimeError("producer failed")
        assert w.ids == ["a", "b", "c"]
    with TrajectoryFile(path) as f:
        assert f.ids == ["a", "b", "c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.h5"]


def test_double_buffering_copies_the_store_once_and_spares_open_readers(tmp_path, make_traj, same):
    path = tmp_path / "d.h5"
    trajs = [make_traj(i) for i in range(6)]
    with TrajectoryWriter(path) as w:
        for i in range(3):
            w.write(f"{i}", trajs[i])
        assert w.full_copies == 1  # later writes reuse the previous version (the swap)
        reader = TrajectoryFile(path)  # holds version {0, 1, 2} open across the next writes
        for i in range(3, 6):
            w.write(f"{i}", trajs[i])
        assert w.full_copies == 2  # that version was in use: the writer copied instead of changing it
        assert reader.ids == ["0", "1", "2"]
        same(reader.read("2"), trajs[2])
        reader.close()
    with TrajectoryFile(path) as f:
        assert f.ids == [str(i) for i in range(6)]
        for i in range(6):
            same(f.read(str(i)), trajs[i])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5"]  # no swap left behind


def test_a_second_writer_on_the_same_store_is_refused(tmp_path, make_traj):
    path = tmp_path / "one.h5"
    with TrajectoryWriter(path) as w:
        with pytest.raises(OutputError, match="being written by another process"):
            TrajectoryWriter(path)
        w.write("a", make_traj(0))
    with TrajectoryWriter(path) as w:  # free again once closed
        assert w.ids == ["a"]
