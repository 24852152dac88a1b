"""Rollout and evaluation: HCMT's RMSE definition, train -> rollout -> eval through the CLI, divergence."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from meshsim.cli import main
from meshsim.metrics import rmse_per_step, summarize

_spec = importlib.util.spec_from_file_location("_train_test", Path(__file__).parents[1] / "train" / "test_train.py")
_train_test = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_train_test)


def test_rmse_follows_the_hcmt_definition():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(7, 20, 2))
    pred = true.copy()
    offsets = np.array([0.0, 0.0, 0.3, 0.6, 0.9, 1.2, 1.5]) * 1e-3
    pred[:, :10, 0] += offsets[:, None]  # half the nodes off by the offset along x, the others exact
    pred[:, 10:, 1] -= offsets[:, None]  # the other half off along y: ||.||^2 sums components
    rmse = rmse_per_step(pred, true, history=2)
    np.testing.assert_allclose(rmse, offsets[2:], rtol=1e-12)
    s = summarize(rmse, "p")
    assert s["p1"] == pytest.approx(0.3)
    assert s["p_all"] == pytest.approx(np.mean([0.3, 0.6, 0.9, 1.2, 1.5]))
    assert s["p50"] == s["p_all"]  # fewer than 50 steps: HCMT's slice takes them all
    long = summarize(np.arange(1, 61) * 1e-3, "s")
    assert long["s50"] == pytest.approx(25.5) and long["s_all"] == pytest.approx(30.5) and long["s1"] == 1
    # scalar fields [T, N]
    np.testing.assert_allclose(rmse_per_step(np.full((3, 4), 2.0), np.zeros((3, 4)), history=2), [2.0])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    data = _train_test.synthetic_store(tmp / "data.h5", num=3, frames=7)
    cfg = {"train_data": [str(data)], "valid_data": [str(data)], "model": dict(_train_test.TINY_MODEL),
           "optim": {"lr": 1e-3}, "batch_size": 2, "steps": 4, "warmup_steps": 1, "log_interval": 2,
           "checkpoint_interval": 4, "val_interval": 2, "val_rollouts": 1, "val_steps": 3, "device": "cpu"}
    (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp / "cfg.yaml"), "--run-dir", str(tmp / "run"), "name=e2e"]) == 0
    return tmp, data, tmp / "run" / "checkpoints" / "best.pt"


def test_train_rollout_eval_end_to_end(trained, capsys):
    from meshsim.datasets import TrajectoryFile
    from meshsim.datasets.schema import NodeType

    tmp, data, best = trained
    out = tmp / "rollout.h5"
    assert main(["rollout", str(best), str(data), "-o", str(out), "--traj", "00000,00002", "--steps", "4"]) == 0
    assert "rolled out 2 trajectories x 4 steps" in capsys.readouterr().out
    with TrajectoryFile(out) as f, TrajectoryFile(data) as src:
        assert f.is_rollout and f.ids == ["00000", "00002"]
        traj, gt = f.read("00002"), src.read("00002")
    assert traj.pred_world_pos.shape == traj.world_pos.shape == (6, *gt.world_pos.shape[1:])
    np.testing.assert_array_equal(traj.world_pos, gt.world_pos[:6])
    np.testing.assert_array_equal(traj.pred_world_pos[:2], gt.world_pos[:2])  # history from ground truth
    handle = traj.node_type == int(NodeType.HANDLE)
    np.testing.assert_array_equal(traj.pred_world_pos[:, handle], gt.world_pos[:6, handle])  # never predicted
    assert not np.array_equal(traj.pred_world_pos[2:, ~handle], gt.world_pos[2:6, ~handle])  # really predicted
    assert traj.pred_fields["stress"].shape == (6, gt.world_pos.shape[1])
    assert len(traj.attrs["rollout_step_seconds"]) == 4 and traj.attrs["rollout_history_frames"] == 2

    js, png = tmp / "eval.json", tmp / "eval.png"
    assert main(["eval", str(out), "--json", str(js), "--plot", str(png)]) == 0
    table = capsys.readouterr().out
    assert "00000" in table and "mean" in table and "p_all" in table
    report = json.loads(js.read_text())
    expected = rmse_per_step(traj.pred_world_pos, traj.world_pos) * 1e3
    got = report["trajectories"]["00002"]
    assert got["p1"] == pytest.approx(expected[0]) and got["p_all"] == pytest.approx(expected.mean())
    assert got["p50"] == got["p_all"] and got["steps"] == 4 and math.isfinite(got["s_all"])
    assert report["mean"]["p_all"] == pytest.approx(np.mean([report["trajectories"][i]["p_all"]
                                                             for i in ("00000", "00002")]))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rollout_shows_progress_on_a_terminal_and_nothing_in_a_pipe(trained, tmp_path, monkeypatch, capsys):
    import io
    import sys

    from meshsim.rollout import rollout_file

    tmp, data, best = trained
    rollout_file(best, data, tmp_path / "piped.h5", steps=2)  # stderr is not a terminal under pytest
    assert capsys.readouterr().err == ""

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    rollout_file(best, data, tmp_path / "shown.h5", steps=2)
    assert "rollout -> shown.h5" in screen.getvalue() and "3/3" in screen.getvalue()


def test_rollout_and_eval_refuse_bad_inputs(trained, capsys):
    tmp, data, best = trained
    out = tmp / "again.h5"
    assert main(["rollout", str(best), str(data), "-o", str(out), "--steps", "1"]) == 0
    cases = [
        (["rollout", str(best), str(data), "-o", str(out)], "--force"),
        (["rollout", str(best), str(data), "-o", str(tmp / "x.h5"), "--traj", "nope"], "no trajectory 'nope'"),
        (["rollout", str(best), str(data), "-o", str(tmp / "y.h5"), "--steps", "99"], "rollout steps"),
        (["rollout", str(data), str(data), "-o", str(tmp / "z.h5")], "checkpoint"),
        (["eval", str(data)], "not a rollout file"),
    ]
    capsys.readouterr()
    for argv, words in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
    assert main(["rollout", str(best), str(data), "-o", str(out), "--steps", "2", "--force"]) == 0


def _exploding_checkpoint(best, path):
    """A copy of `best` whose first predicted frame leaves the scene (its de-normalisation blown up); its model."""
    from meshsim.train.checkpoint import read_checkpoint, save_checkpoint

    ckpt = read_checkpoint(best)
    ckpt["model"]["target_normalizer.sum_squared"] = ckpt["model"]["target_normalizer.sum_squared"] * 1e16
    ckpt.pop("format"), ckpt.pop("version"), ckpt.pop("versions")
    save_checkpoint(path, ckpt)
    return ckpt["model"]


def test_a_diverging_model_raises_naming_the_step(trained, capsys):
    tmp, data, best = trained
    bad = tmp / "exploding.pt"
    model = _exploding_checkpoint(best, bad)
    assert main(["rollout", str(bad), str(data), "-o", str(tmp / "boom.h5"), "--steps", "3"]) == 2
    err = capsys.readouterr().err
    assert "diverged at step 1" in err and "trajectory 00000" in err
    assert torch.isfinite(model["target_normalizer.sum_squared"]).all()


def test_the_demo_reports_a_diverging_model_as_a_row_instead_of_failing(trained):
    from meshsim.datasets import TrajectoryFile
    from meshsim.demo import _evaluate, format_summary

    tmp, data, best = trained
    _exploding_checkpoint(best, tmp / "exploding_demo.pt")
    with TrajectoryFile(data) as f:
        count = len(f.ids)
    bad = _evaluate(tmp / "exploding_demo.pt", data, tmp, "boom", 0.1, 1)
    good = _evaluate(best, data, tmp, "fine", 0.1, 1)
    assert bad["diverged"] == bad["worse_than_hold"] == count and bad["rollout_rmse_all_x1e3"] is None
    assert good["diverged"] == 0 and math.isfinite(good["rollout_rmse_all_x1e3"])
    summary = {"scene": "impact-plate-2d", "plan": {"test_trajectories": count}, "solver_seconds_per_frame": 0.1,
               "models": {"fine": {"label": "fine", "train_steps": 1, **good},
                          "boom": {"label": "boom", "train_steps": 1, **bad}},
               "baselines": good["baselines"], "paraview": [], "video": None, "view_command": "meshsim view x"}
    rows = {line.split()[0]: line for line in format_summary(summary).splitlines()}
    assert rows["boom"].endswith(f"diverged on {count}") and "-" in rows["boom"]
    assert rows["fine"].endswith("x")
