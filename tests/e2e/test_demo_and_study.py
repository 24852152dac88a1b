"""The main job end to end (`meshsim demo --quick`) and a design study on its checkpoint, through the CLI."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from procs import meshsim_cmd, run

from meshsim.datasets import TrajectoryFile


def meshsim(*args, cwd=None, timeout=900):
    return run(meshsim_cmd(*args), timeout=timeout, cwd=cwd)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    proc = meshsim("demo", "--quick", "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout


def test_demo_writes_everything_it_promises(demo):
    out, stdout = demo
    summary = json.loads((out / "summary.json").read_text())
    for kind in ("hcmt", "mgn"):
        model = summary["models"][kind]
        assert model["train_steps"] > 0
        assert np.isfinite(model["rollout_rmse_all_x1e3"]) and model["rollout_rmse_all_x1e3"] > 0
        assert model["speedup_over_solver"] > 0
        with TrajectoryFile(out / f"rollout_{kind}.h5") as f:
            assert f.is_rollout and len(f.ids) == summary["plan"]["test_trajectories"]
            traj = f.read(f.ids[0])
            assert traj.pred_world_pos.shape == traj.world_pos.shape
            assert np.isfinite(traj.pred_world_pos).all()
        assert (out / f"eval_{kind}.png").stat().st_size > 0
    assert "HCMT" in stdout and "MGN" in stdout and "meshsim view" in stdout
    vtkhdf = Path(summary["paraview"][0])
    import h5py

    with h5py.File(vtkhdf) as f:
        assert f["VTKHDF"]["Steps"].attrs["NSteps"] > 1
    if shutil.which("chromium"):
        import imageio.v3 as iio

        frames = iio.imread(summary["video"], index=None)
        assert frames.shape[0] == f_frames(out) and frames.shape[-1] in (3, 4)
        assert frames.std() > 0  # something was drawn


def f_frames(out):
    with TrajectoryFile(out / "rollout_hcmt.h5") as f:
        return f.num_frames(f.ids[0])


def test_study_on_the_demo_checkpoint(demo, tmp_path):
    out, _ = demo
    ckpt = next(p for p in (out / "hcmt" / "checkpoints" / n for n in ("best.pt", "last.pt")) if p.exists())
    proc = meshsim("study", ckpt, "impact-plate-2d", "--sweep", "ball_speed=5,8,11", "--verify", "1",
                   "--set", "preset=benchmark", "--out", tmp_path / "study")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "study" / "study.csv")))
    assert [float(r["ball_speed"]) for r in rows] == [5.0, 8.0, 11.0]
    verified = [r for r in rows if r.get("solver_peak_displacement")]
    assert len(verified) == 1
    for r in rows:
        assert float(r["learned_peak_displacement"]) > 0 and float(r["learned_peak_von_mises"]) > 0
    v = verified[0]
    assert float(v["solver_peak_displacement"]) > 0 and float(v["solver_contact_duration"]) > 0
    assert np.isfinite(float(v["position_rmse_all_x1e3"]))
    assert (tmp_path / "study" / "study.png").stat().st_size > 0
    with TrajectoryFile(tmp_path / "study" / "study.h5") as f:
        assert len(f.ids) == 3


@pytest.mark.parametrize("args, words", [
    (["--sweep", "ball_speed"], "NAME=v1,v2"),
    (["--sweep", "no_such=1,2"], "no parameter 'no_such'"),
    (["--sweep", "ball_speed=1,2", "--verify", "5"], "--verify"),
])
def test_study_bad_input_is_one_line(demo, tmp_path, args, words):
    out, _ = demo
    ckpt = out / "hcmt" / "checkpoints" / "last.pt"
    proc = meshsim("study", ckpt, "impact-plate-2d", *args, "--out", tmp_path / "s")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert words in lines[-1] and "Traceback" not in proc.stderr


def test_demo_refuses_a_file_as_output(tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me")
    proc = meshsim("demo", "--quick", "--out", target)
    assert proc.returncode == 2 and "is a file" in proc.stderr
    assert target.read_text() == "keep me"
