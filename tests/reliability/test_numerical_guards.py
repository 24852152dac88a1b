"""Blow-ups stop with one line naming the step (and the element or trajectory), exit code 2, and leave stores
valid: FEM forced onto a substep beyond its stability limit inside `meshsim generate`, an MPM scene with a far too
large dt inside `meshsim nclaw generate`, and learned rollouts that go non-finite or drift out of the scene."""

from __future__ import annotations

import re

from procs import meshsim_cmd, run

from meshsim.cli import main

from .conftest import assert_one_error_line

GEN_TINY = ["num_frames=4", "cells_x=8", "cells_y=2", "ball_rings=2", "duration=2e-3"]


def _ids(path):
    from meshsim.datasets import TrajectoryFile

    if not path.exists():
        return []
    with TrajectoryFile(path) as f:
        for i in f.ids:
            f.read(i)  # every trajectory present validates
        return list(f.ids)


def test_fem_substep_beyond_stability_stops_generate_naming_step_and_element(tmp_path, capsys, monkeypatch, tally):
    from meshsim.physics.fem_model import FemModel

    real = FemModel.stable_dt
    # A solver bug or a user-forced step: 20x the stable substep. The guard must catch it, not the user's eyes.
    monkeypatch.setattr(FemModel, "stable_dt", property(lambda self: 20 * real.fget(self)))
    out = tmp_path / "g.h5"
    code = main(["generate", "impact-plate-2d", "--num", "2", "--seed", "1", "--out", str(out), *GEN_TINY])
    line = assert_one_error_line(code, capsys.readouterr().err, "step", "element")
    assert re.search(r"element \d+ .*step \d+|step \d+.*element \d+", line), line
    assert _ids(out) == []  # nothing half-simulated was stored
    tally["guard.fem_blowups_stopped"] += 1
    monkeypatch.setattr(FemModel, "stable_dt", real)
    assert main(["generate", "impact-plate-2d", "--num", "2", "--seed", "1", "--out", str(out), *GEN_TINY]) == 0
    assert _ids(out) == ["00000", "00001"]  # the same command works once the cause is gone


def test_mpm_blowup_stops_nclaw_generate_naming_the_step(tmp_path, tally):
    # A real process: its whole stderr (native libraries included, e.g. Warp's CUDA-driver notice) is one line.
    out = tmp_path / "m.h5"
    proc = run(meshsim_cmd("nclaw", "generate", "--out", out, "--material", "jelly", "--set", "steps=20",
                           "--set", "spacing=0.1", "--set", "res=8", "--set", "dt=0.05"), timeout=300)
    line = assert_one_error_line(proc.returncode, proc.stderr, "step", "not finite")
    assert re.search(r"step \d+", line)
    assert _ids(out) == []
    tally["guard.mpm_blowups_stopped"] += 1


def _wrap_step(monkeypatch, perturb):
    from meshsim.models.simulator import LearnedSimulator

    real, calls = LearnedSimulator.step, []

    def step(self, static, prev, cur, next_hint, fields=None):
        next_pos, fields = real(self, static, prev, cur, next_hint, fields)
        calls.append(1)
        return perturb(len(calls), next_pos), fields

    monkeypatch.setattr(LearnedSimulator, "step", step)


def test_non_finite_rollout_names_trajectory_and_step_and_keeps_finished_ones(good_inputs, tmp_path, capsys,
                                                                               monkeypatch, tally):
    steps = 8  # per trajectory, one at a time (--batch 1): the 2nd trajectory goes NaN at its step 3 (call 8 + 3)
    _wrap_step(monkeypatch, lambda n, pos: pos * float("nan") if n == steps + 3 else pos)
    out = tmp_path / "r.h5"
    code = main(["rollout", str(good_inputs["ckpt"]), str(good_inputs["store"]), "-o", str(out), "--device", "cpu",
                 "--batch", "1"])
    assert_one_error_line(code, capsys.readouterr().err, "trajectory 00001", "diverged at step 3", "non-finite")
    assert _ids(out) == ["00000"]  # the finished trajectory stays, valid; nothing of the diverged one
    tally["guard.rollout_divergences_reported"] += 1


def test_drifting_rollout_is_reported_at_the_step_it_leaves_the_scene(good_inputs, tmp_path, capsys, monkeypatch,
                                                                      tally):
    from meshsim.datasets import TrajectoryFile

    with TrajectoryFile(good_inputs["store"]) as f:
        world = f.read("00000").world_pos
    size = float((world.max(axis=(0, 1)) - world.min(axis=(0, 1))).max())
    # drift 3 x size x 10^(k-5): inside the 10x-enlarged box up to step 5, far outside at step 6
    _wrap_step(monkeypatch, lambda n, pos: pos + 3 * size * 10.0 ** (n - 5))
    code = main(["rollout", str(good_inputs["ckpt"]), str(good_inputs["store"]), "-o", str(tmp_path / "r.h5"),
                 "--device", "cpu"])
    assert_one_error_line(code, capsys.readouterr().err, "trajectory 00000", "diverged at step 6", "bounding box")
    tally["guard.rollout_divergences_reported"] += 1
