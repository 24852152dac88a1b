"""Batched rollouts: the same answers as one trajectory at a time, and one diverging trajectory stops no other."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from meshsim.errors import RolloutDivergedError

_spec = importlib.util.spec_from_file_location("_train_test", Path(__file__).parents[1] / "train" / "test_train.py")
_train_test = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_train_test)


@pytest.fixture(scope="module")
def trajectories(tmp_path_factory):
    from meshsim.datasets import TrajectoryFile

    path = _train_test.synthetic_store(tmp_path_factory.mktemp("b") / "d.h5", num=3, frames=7)
    with TrajectoryFile(path) as f:
        return [f.read(i) for i in f.ids]


def trained_sim(kind, trajectories):
    from meshsim.models import LearnedSimulator, ModelConfig
    from meshsim.rollout import numeric_attrs

    torch.manual_seed(0)
    cfg = ModelConfig(kind=kind, **{**_train_test.TINY_MODEL, "rigid_obstacles": True, "displacement_input": True})
    sim = LearnedSimulator(cfg, dim=2).train()
    windows = [{"mesh_pos": t.mesh_pos, "cells": t.cells, "node_type": t.node_type, "world_pos": t.world_pos[:3],
                "fields/stress": t.fields["stress"][:3], "attrs": numeric_attrs(t.attrs)} for t in trajectories]
    sim.loss(sim.collate(windows), accumulate_stats=True)  # real normalizer statistics
    return sim.eval()


@pytest.mark.parametrize("kind", ["hcmt", "mgn"])
def test_batched_rollout_equals_one_at_a_time(kind, trajectories):
    from meshsim.rollout import rollout, rollout_batch

    sim = trained_sim(kind, trajectories)
    together = rollout_batch(sim, trajectories, steps=4)
    for traj, batched in zip(trajectories, together):
        alone = rollout(sim, traj, steps=4)
        np.testing.assert_allclose(batched.pred_world_pos, alone.pred_world_pos, atol=2e-6, rtol=1e-5)
        np.testing.assert_allclose(batched.pred_fields["stress"], alone.pred_fields["stress"], atol=1e-3, rtol=1e-4)
    ball = trajectories[0].node_type == 1
    for r in together:  # each ball stays rigid on its own (body ids made unique across the batch)
        d0 = np.linalg.norm(r.pred_world_pos[0, ball][:, None] - r.pred_world_pos[0, ball][None], axis=-1)
        d4 = np.linalg.norm(r.pred_world_pos[-1, ball][:, None] - r.pred_world_pos[-1, ball][None], axis=-1)
        np.testing.assert_allclose(d4, d0, atol=1e-5)


def test_a_diverging_trajectory_does_not_stop_the_others(trajectories, monkeypatch, tmp_path):
    import meshsim.models.rollout_loop as R

    sim = trained_sim("mgn", trajectories)
    original = R._divergence_box
    doomed = trajectories[1].world_pos

    def box(world_pos):
        if world_pos is doomed:  # nothing fits inside: this trajectory diverges at its first step
            return torch.full((2,), np.inf, dtype=torch.float64), torch.full((2,), -np.inf, dtype=torch.float64)
        return original(world_pos)

    monkeypatch.setattr(R, "_divergence_box", box)
    results = R.rollout_batch(sim, trajectories, steps=4, traj_ids=["a", "b", "c"])
    assert isinstance(results[1], RolloutDivergedError) and "trajectory b" in str(results[1])
    assert all(np.isfinite(r.pred_world_pos).all() for r in (results[0], results[2]))
    alone = R.rollout(sim, trajectories[2], steps=4)
    np.testing.assert_allclose(results[2].pred_world_pos, alone.pred_world_pos, atol=2e-6, rtol=1e-5)
