"""LearnedSimulator training levers: the pushforward (unrolled) loss takes the model's own prediction as input;
the displacement input sees a translated body that edge features cannot."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from meshsim.errors import DataFormatError

_spec = importlib.util.spec_from_file_location("_train_test", Path(__file__).parents[1] / "train" / "test_train.py")
_train_test = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_train_test)


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


def test_edge_loss_counts_the_relative_motion_of_neighbours_not_a_common_offset(tmp_path):
    from meshsim.datasets import FrameWindowDataset
    from meshsim.datasets.schema import NodeType
    from meshsim.errors import ConfigError
    from meshsim.graph import position_target
    from meshsim.models import LearnedSimulator, ModelConfig

    data = _train_test.synthetic_store(tmp_path / "d.h5", num=1, frames=6)
    plain = LearnedSimulator(ModelConfig(kind="mgn", **_train_test.TINY_MODEL), dim=2)
    assert not any("edge_target" in k for k in plain.state_dict())  # checkpoints without it keep their keys
    sim = LearnedSimulator(ModelConfig(kind="mgn", **_train_test.TINY_MODEL, edge_loss_weight=0.5), dim=2)
    batch = sim.collate([FrameWindowDataset(str(data), history=1, horizon=1)[0]])
    sim.train()
    sim.loss(batch, accumulate_stats=True)  # statistics for every normalizer
    sim.eval()
    target = position_target(batch.prev_pos, batch.cur_pos, batch.next_pos, "accel")  # physical units
    mask = sim.output_mask(batch.node_type).float()

    def edge_loss(update):
        return float(sim._edge_loss(batch.edge_index, batch.node_type, update, target, mask, False))

    assert edge_loss(target) == 0.0
    assert edge_loss(target + torch.tensor([3e-4, -2e-4])) == pytest.approx(0.0, abs=1e-9)  # common offset: no strain
    node = int(torch.nonzero(mask[:, 0])[0])
    jitter = target.clone()
    jitter[node] += 3e-4  # one node off: every predicted edge at it is strained
    assert edge_loss(jitter) > 0
    ball = int(torch.nonzero(batch.node_type == NodeType.OBSTACLE)[0])
    rigid = target.clone()
    rigid[ball] += 3e-4  # an obstacle node: rigid or kinematic, its edges carry no strain of the body
    assert edge_loss(rigid) == pytest.approx(0.0)
    loss, logs = sim.loss(batch)
    assert float(loss) == pytest.approx(float(logs["loss_position"] + logs["loss_fields"]
                                              + 0.5 * logs["loss_edges"]), rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in sim.network.parameters() if p.requires_grad)
    with pytest.raises(ConfigError, match="edge_loss_weight"):
        ModelConfig(edge_loss_weight=-1.0)


def test_target_norm_by_type_gives_the_obstacle_its_own_target_statistics(tmp_path):
    from meshsim.datasets import FrameWindowDataset
    from meshsim.datasets.schema import NodeType
    from meshsim.graph import position_target
    from meshsim.models import LearnedSimulator, ModelConfig

    data = _train_test.synthetic_store(tmp_path / "d.h5", num=1, frames=8)
    windows = FrameWindowDataset(str(data), history=1, horizon=1)
    sim = LearnedSimulator(ModelConfig(kind="hcmt", **_train_test.TINY_MODEL, target="accel",
                                       noise_std=0.0, target_norm_by_type=True), dim=2)
    batch = sim.collate([windows[0], windows[3]])
    sim.train()
    sim.loss(batch, accumulate_stats=True)
    true = position_target(batch.prev_pos, batch.cur_pos, batch.next_pos, "accel").double()
    obstacle = batch.node_type.reshape(-1) == NodeType.OBSTACLE
    for group, rows in ((0, ~obstacle), (1, obstacle)):
        torch.testing.assert_close(sim.target_normalizer.groups[group].mean(), true[rows].mean(0), rtol=1e-5,
                                   atol=1e-12)
    assert {"target_normalizer.groups.1.sum", "target_normalizer.groups.0.count"} <= set(sim.state_dict())
    sim.eval()  # a rollout step inverts the grouped statistics: its update is the normalized prediction mapped back
    with torch.no_grad():
        pred = sim._forward(batch, batch.prev_pos, batch.cur_pos, None, False)
        next_pos = sim._advance(batch, batch.prev_pos, batch.cur_pos, None)[0]
        group = obstacle.long()
        mean = torch.stack([g.mean() for g in sim.target_normalizer.groups]).float()[group]
        std = torch.stack([g.std() for g in sim.target_normalizer.groups]).float()[group]
        expected = 2 * batch.cur_pos - batch.prev_pos + pred[:, :2] * std + mean
    predicted = sim.output_mask(batch.node_type).all(-1) & ~obstacle  # obstacles: not rigid here, but check plate
    torch.testing.assert_close(next_pos[predicted], expected[predicted], rtol=1e-5, atol=1e-7)
    plain = LearnedSimulator(ModelConfig(kind="hcmt", **_train_test.TINY_MODEL), dim=2)
    assert "target_normalizer.sum" in plain.state_dict()  # default: the state_dict of models shipped before
