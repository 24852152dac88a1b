"""`meshsim data inspect` end to end."""

import json

import h5py
import numpy as np
from procs import meshsim_cmd, run

from meshsim import cli
from meshsim.datasets import TrajectoryWriter


def test_inspect_text_and_json(tmp_path, capsys, make_traj):
    path = tmp_path / "s.h5"
    with TrajectoryWriter(path) as w:
        w.write("00000", make_traj(0))
        w.write("00001", make_traj(1, frames=9))
    assert cli.main(["data", "inspect", str(path)]) == 0
    text = capsys.readouterr().out
    for expected in ("trajectories  2 (15 frames in all)", "frames        6..9", "dt            0.005..0.01 s",
                     "units         length: m, time: s, stress: Pa", "fields/stress", "globals/kinetic_energy",
                     "valid         yes", "(nodes, summed over the 2 trajectories)"):  # fmt: skip
        assert expected in text, expected
    assert cli.main(["data", "inspect", "--json", str(path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["num_trajectories"] == 2 and summary["fields"]["fields/velocity"] == ["T", "N", 2]
    assert sum(summary["node_types"].values()) == 24 and set(summary["node_types"]) <= {"NORMAL", "OBSTACLE", "HANDLE"}
    lo, hi = summary["ranges"]["world_pos"]
    assert lo < 0 < hi


def test_inspect_bad_file_exits_2_with_one_line(tmp_path, make_traj):
    path = tmp_path / "s.h5"
    with TrajectoryWriter(path) as w:
        w.write("00000", make_traj(0))
    with h5py.File(path, "r+") as raw:
        raw["trajectories/00000/fields/stress"][2, 3] = np.nan
    for target in (path, tmp_path / "missing.h5"):
        out = run(meshsim_cmd("data", "inspect", target), timeout=120)
        assert out.returncode == 2 and out.stdout == ""
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("meshsim: error: ") and target.name in lines[0]
    assert "trajectory '00000'" in lines[0] or "missing.h5" in lines[0]
