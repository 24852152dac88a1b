"""Models: HCMT and MGN overfit one short trajectory; step/output-mask semantics; state and checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meshsim.config import to_dict
from meshsim.datasets.schema import NodeType
from meshsim.errors import CheckpointError, ConfigError, DataFormatError
from meshsim.models import LearnedSimulator, ModelConfig, load_simulator

ATTRS = {"density": 1000.0, "youngs_modulus": 1e6}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny graphs: one thread is faster than two contended ones and keeps timings steady."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def trajectory(frames=10):
    """A plate clamped on its left edge swinging with damped motion; a triangle obstacle coming down on it."""
    nx, ny = 8, 3
    xs, ys = np.meshgrid(np.linspace(0, 1, nx), np.linspace(0, 0.3, ny))
    plate = np.stack([xs.ravel(), ys.ravel()], 1)
    cells = [[j * nx + i, j * nx + i + 1, (j + 1) * nx + i + 1] for j in range(ny - 1) for i in range(nx - 1)]
    cells += [[j * nx + i, (j + 1) * nx + i + 1, (j + 1) * nx + i] for j in range(ny - 1) for i in range(nx - 1)]
    ball = np.array([[0.6, 0.4], [0.75, 0.4], [0.675, 0.5]])
    mesh_pos = np.concatenate([plate, ball]).astype(np.float32)
    cells = np.concatenate([cells, [[len(plate), len(plate) + 1, len(plate) + 2]]]).astype(np.int64)
    node_type = np.zeros(len(mesh_pos), np.int64)
    node_type[: len(plate)][plate[:, 0] == 0] = NodeType.HANDLE
    node_type[len(plate):] = NodeType.OBSTACLE
    t = np.arange(frames)[:, None]
    world = np.repeat(mesh_pos[None], frames, 0).astype(np.float64)
    disp = 0.06 * np.exp(-0.1 * t) * np.sin(0.9 * t + 0.5) * plate[None, :, 0] ** 2
    world[:, : len(plate), 1] += disp
    world[:, len(plate):, 1] -= 0.01 * t
    stress = np.zeros((frames, len(mesh_pos)), np.float32)
    stress[:, : len(plate)] = 1e5 * np.abs(disp)
    return mesh_pos, cells, node_type, world.astype(np.float32), stress


def windows(traj):
    mesh_pos, cells, node_type, world, stress = traj
    return [{"mesh_pos": mesh_pos, "cells": cells, "node_type": node_type, "world_pos": world[t - 1 : t + 2],
             "fields/stress": stress[t - 1 : t + 2], "attrs": ATTRS, "traj_id": "0", "t": t}
            for t in range(1, len(world) - 1)]


TINY = {"latent": 32, "blocks": 2, "cmt_blocks": 1, "levels": 2, "heads": 2, "contact_radius": 0.15,
        "noise_std": 0.0}


@pytest.mark.parametrize("kind", ["hcmt", "mgn"])
def test_overfits_one_trajectory(kind):
    torch.manual_seed(0)
    sim = LearnedSimulator(ModelConfig(kind=kind, **TINY), dim=2).train()
    batch = sim.collate(windows(trajectory()))
    assert batch.num_graphs == 8
    sim.loss(batch, accumulate_stats=True)  # statistics from the data first (normalizer warm-up)
    assert sim.node_normalizer.count.item() == batch.num_nodes
    optimizer = torch.optim.Adam(sim.parameters(), lr=3e-3)
    first = None
    for _ in range(600):
        loss, logs = sim.loss(batch)
        first = first if first is not None else logs["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if logs["loss"] < first / 100:
            break
    assert logs["loss"] < first / 100, (first, logs)


def test_step_respects_output_mask_and_returns_fields():
    mesh_pos, cells, node_type, world, stress = traj = trajectory()
    node_type = node_type.copy()
    node_type[5] = NodeType.SYMMETRIC
    sim = LearnedSimulator(ModelConfig(**TINY), dim=2).train()
    sim.loss(sim.collate(windows(traj)), accumulate_stats=True)
    sim.eval()
    static = sim.prepare(mesh_pos, cells, node_type, ATTRS)
    hint = torch.tensor(world[2]) + 5.0  # far from anything the model would predict
    nxt, fields = sim.step(static, torch.tensor(world[0]), torch.tensor(world[1]), hint)
    mask = sim.output_mask(torch.tensor(node_type))
    assert mask[node_type == NodeType.HANDLE].sum() == 0 and mask[5].tolist() == [False, True]
    assert torch.equal(nxt[~mask], hint[~mask])  # not predicted: taken from the hint
    assert (nxt[mask] - hint[mask]).abs().min() > 1.0  # predicted: the model's own answer
    assert fields["stress"].shape == (len(mesh_pos),) and torch.isfinite(fields["stress"]).all()
    frozen, _ = sim.step(static, torch.tensor(world[0]), torch.tensor(world[1]))
    assert torch.equal(frozen[~mask], torch.tensor(world[1])[~mask])  # no hint: constrained parts stay put
    counts = sim.node_normalizer.count.clone()
    sim.train()
    sim.step(static, torch.tensor(world[0]), torch.tensor(world[1]), hint)
    assert torch.equal(sim.node_normalizer.count, counts)  # step never accumulates statistics


@pytest.mark.parametrize("over", [{"kind": "mgn", "world_edges": True}, {"attention": "softmax"},
                                  {"target": "accel", "kinematic_input": True, "fields": ()},
                                  {"levels": 0, "material_keys": ()},
                                  {"displacement_input": True, "rigid_obstacles": True, "target": "accel"}])
def test_variants_train_and_step(over):
    traj = trajectory(5)
    sim = LearnedSimulator(ModelConfig(**{**TINY, **over}), dim=2).train()
    batch = sim.collate(windows(traj))
    loss, logs = sim.loss(batch, accumulate_stats=True)
    loss.backward()
    assert np.isfinite(logs["loss"]) and all(torch.isfinite(p.grad).all() for p in sim.parameters()
                                              if p.grad is not None)
    nxt, _ = sim.eval().step(sim.prepare(*traj[:3], ATTRS), torch.tensor(traj[3][0]), torch.tensor(traj[3][1]),
                             torch.tensor(traj[3][2]))
    assert torch.isfinite(nxt).all()


def test_noise_only_in_training_mode():
    sim = LearnedSimulator(ModelConfig(**{**TINY, "noise_std": 0.05}), dim=2)
    batch = sim.collate(windows(trajectory(4)))
    sim.loss(batch, accumulate_stats=True)
    sim.eval()
    assert sim.loss(batch)[1] == sim.loss(batch)[1]  # no noise: deterministic
    sim.train()
    assert sim.loss(batch)[1] != sim.loss(batch)[1]


def test_checkpoint_roundtrip_and_refusals(tmp_path):
    mesh_pos, cells, node_type, world, _ = traj = trajectory(4)
    sim = LearnedSimulator(ModelConfig(**TINY), dim=2).train()
    sim.loss(sim.collate(windows(traj)), accumulate_stats=True)
    assert {"node_normalizer.sum", "target_normalizer.count", "mesh_edge_normalizer.sum_squared"} <= set(
        sim.state_dict())
    path = tmp_path / "ckpt.pt"
    torch.save({"format": "meshsim.checkpoint", "version": 1, "model_config": to_dict(sim.cfg), "dim": 2,
                "model": sim.state_dict()}, path)
    loaded = load_simulator(path)
    sim.eval()
    args = (torch.tensor(world[0]), torch.tensor(world[1]), torch.tensor(world[2]))
    want = sim.step(sim.prepare(mesh_pos, cells, node_type, ATTRS), *args)[0]
    got = loaded.step(loaded.prepare(mesh_pos, cells, node_type, ATTRS), *args)[0]
    torch.testing.assert_close(got, want)
    torch.save({"format": "other"}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError):
        load_simulator(tmp_path / "bad.pt")
    with pytest.raises(CheckpointError):
        load_simulator(tmp_path / "missing.pt")


def test_config_and_data_validation():
    for bad in ({"latent": 30, "heads": 4}, {"predicted_types": ("HANDLE",)}, {"predicted_types": ("FOO",)},
                {"contact_radius": 0.0}, {"noise_gamma": 2.0}):
        with pytest.raises(ConfigError):
            ModelConfig(**bad)
    sim = LearnedSimulator(ModelConfig(**TINY), dim=2)
    sample = windows(trajectory(4))[0]
    with pytest.raises(DataFormatError, match="youngs_modulus"):
        sim.collate([{**sample, "attrs": {"density": 1.0}}])
    with pytest.raises(DataFormatError, match="node_type"):
        sim.collate([{**sample, "node_type": np.full_like(sample["node_type"], 12)}])
    with pytest.raises(DataFormatError, match="cells"):
        sim.collate([{**sample, "cells": sample["cells"] + 100}])
    with pytest.raises(DataFormatError, match="stress"):
        sim.collate([{k: v for k, v in sample.items() if k != "fields/stress"}])
