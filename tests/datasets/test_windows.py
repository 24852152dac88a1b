"""FrameWindowDataset: every window, exactly once, correct at trajectory ends and across files."""

import numpy as np
import pytest
import torch

from meshsim.datasets import FrameWindowDataset, TrajectoryWriter
from meshsim.errors import DataFormatError


@pytest.fixture
def files(tmp_path, make_traj):
    lengths = [[5, 3], [2, 7]]  # frames per trajectory, per file (2 frames: too short for any window)
    paths, source = [], {}
    for i, frames in enumerate(lengths):
        path = tmp_path / f"part{i}.h5"
        with TrajectoryWriter(path) as w:
            for j, n in enumerate(frames):
                traj = make_traj(seed=10 * i + j, frames=n, nodes=9 + j)
                w.write(f"t{j}", traj)
                source[(str(path), f"t{j}")] = traj
        paths.append(path)
    return paths, source


def test_windows_cover_every_valid_frame_once_across_files(files):
    paths, source = files
    history, horizon = 1, 1
    ds = FrameWindowDataset(paths, history=history, horizon=horizon)
    expected = [(str(p), tid, t) for (p, tid), tr in source.items() for t in range(history, tr.num_frames - horizon)]
    assert len(ds) == len(expected) == 3 + 1 + 0 + 5
    seen = []
    for i in range(len(ds)):
        item = ds[i]
        traj = source[(item["path"], item["traj_id"])]
        t = item["t"]
        seen.append((item["path"], item["traj_id"], t))
        np.testing.assert_array_equal(item["world_pos"].numpy(), traj.world_pos[t - history : t + horizon + 1])
        np.testing.assert_array_equal(item["fields/velocity"].numpy(), traj.fields["velocity"][t - 1 : t + 2])
        np.testing.assert_array_equal(
            item["globals/kinetic_energy"].numpy(), traj.globals["kinetic_energy"][t - 1 : t + 2]
        )
        np.testing.assert_array_equal(item["cells"].numpy(), traj.cells)
        assert item["cells"].dtype == torch.int64 and item["node_type"].dtype == torch.int64
        assert item["dt"].item() == pytest.approx(traj.dt) and item["attrs"]["youngs_modulus"].item() == pytest.approx(
            traj.attrs["youngs_modulus"]
        )
    assert sorted(seen) == sorted(expected)
    last = ds[len(ds) - 1]  # the final window ends exactly on the last frame
    assert last["t"] == source[(last["path"], last["traj_id"])].num_frames - 2


def test_longer_history_and_dataloader_workers(files):
    paths, source = files
    ds = FrameWindowDataset(paths, history=3, horizon=2)
    assert len(ds) == 2  # only the 7-frame trajectory holds 6 consecutive frames: windows at t = 3 and 4
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    items = list(loader)  # each worker process opens the files itself
    assert [it["t"] for it in items] == [3, 4]
    for item in items:
        t = item["t"]
        np.testing.assert_array_equal(item["world_pos"].numpy(), source[(str(paths[1]), "t1")].world_pos[t - 3 : t + 3])


def test_too_short_and_bad_arguments(files):
    paths, _ = files
    with pytest.raises(DataFormatError, match="has the 12 frames a window needs"):
        FrameWindowDataset(paths, history=10, horizon=1)
    with pytest.raises(DataFormatError, match="history"):
        FrameWindowDataset(paths, history=-1)
