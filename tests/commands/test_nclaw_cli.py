"""`meshsim nclaw generate | train | eval` end to end at tiny size, and bad input exits 2 with one line."""

import json

import pytest

from meshsim.cli import main
from meshsim.datasets import TrajectoryFile
from meshsim.train.nclaw_eval import evaluate


def test_generate_train_eval_end_to_end(tmp_path, capsys):
    gt = tmp_path / "gt.h5"
    tiny = ["--set", "steps=12", "--set", "spacing=0.1", "--set", "res=12"]
    assert main(["nclaw", "generate", "--out", str(gt), "--material", "plasticine", "--material", "sand", *tiny]) == 0
    with TrajectoryFile(gt) as f:
        assert f.ids == ["plasticine", "sand"]
        traj = f.read("sand")
        assert traj.cells.shape == (traj.num_nodes, 1) and traj.num_frames == 13
        assert traj.attrs["laws"] == "drucker_prager" and traj.attrs["sand_friction_angle"] == 25.0
        assert traj.fields["F"].shape == (13, traj.num_nodes, 9)
    run = tmp_path / "run"
    args = ["nclaw", "train", "--data", str(gt), "--out", str(run), "--set", "trajectory=sand",
            "--set", "teacher_start=4", "--set", "teacher_end=6"]
    assert main([*args, "--set", "epochs=1"]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["epochs"] == 1 and first["material"] == "sand"
    assert main([*args, "--set", "epochs=2"]) == 2  # another config: refuses to resume silently
    assert "another config" in capsys.readouterr().err
    assert main([*args, "--set", "epochs=1"]) == 0  # same config: resumes, nothing left to do
    metrics = tmp_path / "m.json"
    assert main(["nclaw", "eval", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(metrics), "--steps", "6",
                 "--seeds", "1", "--suite", "reconstruction", "--suite", "shape", "--suite", "contact"]) == 0
    res = json.loads(metrics.read_text())
    assert set(res["materials"]["sand"]) == {"reconstruction", "shape"}
    assert set(res["materials"]["sand"]["shape"]) == {"torus", "star", "blob"}
    assert res["summary"]["sand"]["reconstruction"] >= 0
    assert res["summary"]["sand"]["ood"] == pytest.approx(res["summary"]["sand"]["ood_shape"])  # the only OOD suite
    assert "sand+sand" in res["contact"]
    # A ground-truth cache shared by two evaluations: the truth is simulated once, the errors do not change.
    cache = {}
    once = evaluate([str(run / "checkpoint.pt")], ("reconstruction",), steps=6, cache=cache)
    twice = evaluate([str(run / "checkpoint.pt")], ("reconstruction",), steps=6, cache=cache)
    assert len(cache) == 1
    assert once["materials"] == twice["materials"]
    assert once["summary"]["sand"]["reconstruction"] == res["summary"]["sand"]["reconstruction"]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["nclaw", "generate", "--out", "{tmp}/g.h5", "--material", "honey"], "unknown material"),
        (["nclaw", "generate", "--out", "{tmp}/g.h5", "--material", "jelly", "--set", "wall=bouncy"], "mpm.wall"),
        (["nclaw", "generate", "--out", "{tmp}/afile/g.h5", "--material", "jelly"], "afile"),
        (["nclaw", "train", "--data", "{tmp}/missing.h5", "--out", "{tmp}/r"], "missing.h5"),
        (["nclaw", "train", "--data", "x.h5", "--out", "{tmp}/r", "--set", "model=transformer"], "model must be"),
        (["nclaw", "eval", "--checkpoint", "{tmp}/none.pt"], "not found"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, words):
    (tmp_path / "afile").write_text("")  # a file where a folder should be
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("meshsim: error:") and "\n" not in err and words in err
