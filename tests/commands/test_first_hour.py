"""The small things a new user met in the first hour (issue 19, item 8): each error names the problem and the fix."""

import signal
import subprocess
import sys
import time

import pytest
from procs import meshsim_cmd, spawn

from meshsim.cli import main


def _error(capsys, argv) -> str:
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("meshsim: error: "), err
    return err


def test_mistyped_keys_and_scene_names_get_a_did_you_mean(capsys, tmp_path):
    err = _error(capsys, ["generate", "impact-plate-2d", "--out", tmp_path / "x.h5", "ball_sped=5"])
    assert "did you mean 'ball_speed'?" in err
    err = _error(capsys, ["generate", "impact-plat-2d", "--out", tmp_path / "x.h5"])
    assert "did you mean 'impact-plate-2d'?" in err
    err = _error(capsys, ["train", "data/train_hcmt_impact_plate.yaml", "model.latnt=3"])
    assert "did you mean 'latent'?" in err
    assert "yaml.model" not in err and "train_hcmt_impact_plate.yaml: config.model" in err  # file, then key


def test_a_number_where_a_range_is_expected_suggests_the_fixed_range(capsys, tmp_path):
    err = _error(capsys, ["generate", "impact-plate-2d", "--out", tmp_path / "x.h5", "ball_speed=5"])
    assert "ball_speed=[5, 5]" in err
    assert not (tmp_path / "x.h5").exists()


def test_the_scene_list_says_which_command_takes_the_mpm_scene(capsys):
    assert main(["generate", "--list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("nclaw_blob"))
    assert "MPM" in line and "meshsim nclaw generate" in line


def test_a_refused_train_run_leaves_no_run_folder_and_3d_data_is_named(tmp_path, capsys, monkeypatch):
    from meshsim.datasets import Trajectory, TrajectoryWriter
    from meshsim.mesh import box

    monkeypatch.chdir(tmp_path)
    mesh = box((1.0, 1.0, 1.0), (1, 1, 1))
    pos = mesh.points.astype("float32")
    with TrajectoryWriter(tmp_path / "d3.h5") as w:  # 3D data without the 2D recipe's material attributes
        w.write("00000", Trajectory(cells=mesh.cells.astype("int32"), mesh_pos=pos, node_type=[0] * len(pos),
                                    world_pos=[pos] * 4, dt=0.01, attrs={"scenario": "drop-test-3d"}))
    from meshsim.data import __file__ as data_init  # the recipes shipped with the package

    recipe = f"{data_init.rsplit('/', 1)[0]}/train_hcmt_impact_plate.yaml"
    err = _error(capsys, ["train", recipe, "train_data=[d3.h5]", "valid_data=[]", "name=r3"])
    assert "3D trajectories of drop-test-3d" in err and "'density'" in err and "material_keys" in err
    err = _error(capsys, ["train", recipe, "train_data=[missing.h5]", "name=r4"])
    assert not (tmp_path / "runs").exists()  # neither refusal left an empty run folder


def test_ctrl_c_stops_generate_with_one_line_and_no_worker_traceback(tmp_path):
    tiny = ["num_frames=40", "cells_x=8", "cells_y=2", "ball_rings=2"]
    # 200 trajectories (~1 min): with Warp's kernels cached, 8 of them were done before the Ctrl-C came
    cmd = meshsim_cmd("generate", "impact-plate-2d", "--num", "200", "--workers", "2", "--out", tmp_path / "g.h5",
                      *tiny)
    with spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) as proc:
        from procs import descendants

        deadline = time.monotonic() + 120
        while len(descendants(proc.pid)) < 2 and time.monotonic() < deadline:  # the pool's workers are up
            time.sleep(0.2)
        time.sleep(3.0)  # inside the first simulations
        import os

        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C: the whole foreground group
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "SpawnPoolWorker" not in err, err
    assert [line for line in err.splitlines() if line.strip()] == ["meshsim: interrupted"], err


if sys.platform != "linux":
    pytestmark = pytest.mark.skip(reason="process-group checks need Linux")
