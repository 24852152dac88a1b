"""Thread choice and the collapse warning; rigid obstacle projection; pushforward (unrolled) training loss."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from meshsim.errors import ConfigError, DataFormatError
from meshsim.graph.rigid import project_rigid, rigid_groups
from meshsim.threads import SMALL_GRAPH_NODES, ThroughputWatch, choose_threads

_spec = importlib.util.spec_from_file_location("_train_test", Path(__file__).with_name("test_train.py"))
_train_test = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_train_test)


def test_threads_explicit_automatic_and_refused(monkeypatch):
    assert choose_threads(3) == 3
    assert choose_threads(0, nodes=SMALL_GRAPH_NODES - 1) == 1  # small graphs: one thread holds its speed
    monkeypatch.setattr("os.getloadavg", lambda: (1.2, 0.0, 0.0))
    monkeypatch.setattr("meshsim.threads.available_cores", lambda: 4)
    assert choose_threads(0, nodes=10**6) == 3  # 4 cores, one taken by another process
    assert choose_threads(0, nodes=10**6, processes=2) == 1
    monkeypatch.setattr("os.getloadavg", lambda: (9.0, 0.0, 0.0))
    assert choose_threads(0, nodes=10**6) == 1  # never below one
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="threads must be an integer"):
            choose_threads(bad)


def test_throughput_watch_warns_once_when_steps_slow_down(capsys):
    watch = ThroughputWatch(window=4, factor=3.0)
    messages = [watch.add(t) for t in [0.1] * 8 + [0.12] * 4 + [0.5] * 4 + [0.6] * 8]
    warnings = [m for m in messages if m]
    assert len(warnings) == 1 and "slowed 5.0x" in warnings[0] and "free the cores" in warnings[0]
    assert capsys.readouterr().err.count("warning: training slowed") == 1


def test_rigid_projection_restores_a_rotated_body_and_leaves_others_alone():
    rng = np.random.default_rng(0)
    reference = torch.as_tensor(rng.normal(size=(12, 2)))
    angle = 0.4
    rot = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], dtype=torch.float64)
    placed = reference @ rot.T + torch.tensor([0.5, -1.0], dtype=torch.float64)
    edges = torch.tensor([[0, 1, 2, 3, 4, 6, 7, 8], [1, 2, 3, 4, 5, 7, 8, 9]])
    members = torch.zeros(12, dtype=torch.bool)
    members[:10] = True
    groups = rigid_groups(edges, members)
    assert groups.tolist() == [0] * 6 + [1] * 4 + [-1, -1]  # two bodies; nodes 10, 11 belong to neither
    noisy = placed + 1e-3 * torch.as_tensor(rng.normal(size=(12, 2)))
    out = project_rigid(noisy, reference, groups)
    assert torch.equal(out[10:], noisy[10:])
    for body in (slice(0, 6), slice(6, 10)):  # the shape is exact: pairwise distances of the reference
        assert torch.allclose(torch.cdist(out[body], out[body]), torch.cdist(reference[body], reference[body]))
    assert (out[:10] - placed[:10]).abs().max() < 3e-3  # and it sits where the noisy prediction put it
    mirrored = placed.clone()
    mirrored[:6, 0] *= -1  # a reflection is not a rigid motion: the result must still be a rotation
    fixed = project_rigid(mirrored, reference, groups)
    a, b = fixed[1] - fixed[0], fixed[2] - fixed[0]
    ra, rb = reference[1] - reference[0], reference[2] - reference[0]
    assert torch.sign(a[0] * b[1] - a[1] * b[0]) == torch.sign(ra[0] * rb[1] - ra[1] * rb[0])


def test_pushforward_loss_takes_the_models_own_prediction_as_input(tmp_path):
    from meshsim.datasets import FrameWindowDataset
    from meshsim.graph import position_target
    from meshsim.models import LearnedSimulator, ModelConfig

    data = _train_test.synthetic_store(tmp_path / "d.h5", num=1, frames=8)
    sim = LearnedSimulator(ModelConfig(kind="mgn", **_train_test.TINY_MODEL), dim=2)
    windows = FrameWindowDataset(str(data), history=1, horizon=3)
    batch = sim.collate([windows[0], windows[2]])
    sim.train()
    sim.loss(batch, accumulate_stats=True)  # statistics, so that the normalizers are not the identity
    sim.eval()  # no noise: the loss is a deterministic function of the inputs
    loss, _ = sim.loss(batch, unroll=2)
    with torch.no_grad():
        x1 = sim._advance(batch, batch.prev_pos, batch.cur_pos, batch.next_pos)[0]
        x2 = sim._advance(batch, batch.cur_pos, x1, batch.future_pos[:, 0])[0]
        pred = sim._forward(batch, x1, x2, batch.future_pos[:, 1], False)
        target = sim.target_normalizer(position_target(x1, x2, batch.future_pos[:, 1], sim.cfg.target))
        mask = sim.output_mask(batch.node_type).float()
        expected = (((pred[:, :2] - target) ** 2) * mask).sum(-1).mean()
        expected = expected + ((pred[:, 2:] - sim.field_normalizer(batch.future_fields[:, 1])) ** 2).sum(-1).mean()
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    assert float(loss) != pytest.approx(float(sim.loss(batch)[0]), rel=1e-3)  # not the one-step loss
    with pytest.raises(DataFormatError, match="horizon=4"):
        sim.loss(batch, unroll=3)


def test_training_with_unrolled_steps_runs(tmp_path):
    from meshsim.train.trainer import train

    data = _train_test.synthetic_store(tmp_path / "d.h5", num=2, frames=8)
    cfg = _train_test.tiny_config(tmp_path, data, unroll_steps=3, steps=6, threads=1)
    result = train(cfg, show_progress=False)
    assert result.step == 6 and math.isfinite(result.loss)


def test_cpu_budget_stops_training_and_snapshots_mark_the_learning_curve(tmp_path):
    from meshsim.train.checkpoint import read_checkpoint
    from meshsim.train.trainer import train

    data = _train_test.synthetic_store(tmp_path / "d.h5", num=2, frames=8)
    cfg = _train_test.tiny_config(tmp_path, data, steps=10**6, threads=1, cpu_limit_minutes=0.02,
                                  snapshot_cpu_minutes=[0.005, 0.01], val_interval=0, checkpoint_interval=10**5)
    result = train(cfg, show_progress=False)
    assert 1 < result.step < 10**6  # stopped by the CPU budget, not by the step count
    ckpts = tmp_path / "run" / "checkpoints"
    early, late = read_checkpoint(ckpts / "cpu_0.005min.pt"), read_checkpoint(ckpts / "cpu_0.01min.pt")
    assert early["step"] <= late["step"] <= result.step
    assert 0.3 <= early["cpu_seconds"] <= late["cpu_seconds"] <= read_checkpoint(ckpts / "last.pt")["cpu_seconds"]
    with pytest.raises(ConfigError, match="snapshot_cpu_minutes"):
        _train_test.tiny_config(tmp_path, data, snapshot_cpu_minutes=[0])


def test_displacement_input_sees_a_translated_body_that_edge_features_cannot():
    from meshsim.models import LearnedSimulator, ModelConfig

    rng = np.random.default_rng(1)
    mesh = torch.as_tensor(rng.uniform(size=(6, 2)), dtype=torch.float32)
    cells = torch.tensor([[0, 1, 2], [2, 3, 4], [3, 4, 5]])
    node_type = torch.zeros(6, dtype=torch.long)
    node_type[5] = 1  # an obstacle node: no displacement feature (its translation carries no strain)
    shift = torch.tensor([0.0, 0.01])
    for flag, differs in ((False, False), (True, True)):
        sim = LearnedSimulator(ModelConfig(kind="mgn", **{**_train_test.TINY_MODEL, "displacement_input": flag}),
                               dim=2).eval()
        static = sim.prepare(mesh, cells, node_type, {"density": 1.0, "youngs_modulus": 1.0})
        rest, moved = sim._forward(static, mesh, mesh, None, False), sim._forward(static, mesh + shift,
                                                                                  mesh + shift, None, False)
        assert (not torch.allclose(rest, moved, atol=1e-6)) == differs


def test_threads_flag_is_validated_on_every_command_that_computes(tmp_path, capsys):
    from meshsim.cli import main

    data = _train_test.synthetic_store(tmp_path / "d.h5", num=1, frames=5)
    (tmp_path / "c.yaml").write_text(f"train_data: [{data}]\nsteps: 2\n")
    for argv in (["train", str(tmp_path / "c.yaml"), "--threads", "-1", "--run-dir", str(tmp_path / "r")],
                 ["rollout", "hcmt-impact-plate-2d", str(data), "-o", str(tmp_path / "o.h5"), "--threads", "-2"],
                 ["study", "hcmt-impact-plate-2d", "impact-plate-2d", "--sweep", "ball_speed=5", "--threads", "-3",
                  "--out", str(tmp_path / "s")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "threads" in err[0], err
    assert not (tmp_path / "r").exists() and not (tmp_path / "o.h5").exists()
