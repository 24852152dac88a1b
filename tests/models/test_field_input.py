"""`model.field_input`: the fields (stress) as carried state. Their values at t are inputs, the model predicts
their change, training unrolls them with the positions, and a rollout feeds the model's own fields back."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from meshsim.errors import ConfigError, DataFormatError

_spec = importlib.util.spec_from_file_location("_train_test", Path(__file__).parents[1] / "train" / "test_train.py")
_train_test = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_train_test)


def _trained_sim(data, kind="hcmt"):
    """A tiny field-input model whose normalizers have statistics (so that they are not the identity)."""
    from meshsim.datasets import FrameWindowDataset
    from meshsim.models import LearnedSimulator, ModelConfig

    sim = LearnedSimulator(ModelConfig(kind=kind, field_input=True, **_train_test.TINY_MODEL), dim=2)
    windows = FrameWindowDataset(str(data), history=1, horizon=3)
    batch = sim.collate([windows[0], windows[2]])
    sim.train()
    sim.loss(batch, accumulate_stats=True)
    return sim.eval(), batch


def test_pushforward_loss_carries_the_models_own_fields(tmp_path):
    from meshsim.graph import position_target

    sim, batch = _trained_sim(_train_test.synthetic_store(tmp_path / "d.h5", num=1, frames=8))
    loss, _ = sim.loss(batch, unroll=2)
    with torch.no_grad():
        x1, f1 = sim._advance(batch, batch.prev_pos, batch.cur_pos, batch.next_pos, batch.cur_fields)
        x2, f2 = sim._advance(batch, batch.cur_pos, x1, batch.future_pos[:, 0], f1["stress"][:, None])
        carried = f2["stress"][:, None]
        pred = sim._forward(batch, x1, x2, batch.future_pos[:, 1], False, carried)
        target = sim.target_normalizer(position_target(x1, x2, batch.future_pos[:, 1], sim.cfg.target))
        mask = sim.output_mask(batch.node_type).float()
        expected = (((pred[:, :2] - target) ** 2) * mask).sum(-1).mean()
        change = sim.field_change_normalizer(batch.future_fields[:, 1] - carried)  # the target is the change
        expected = expected + ((pred[:, 2:] - change) ** 2).sum(-1).mean()
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    # the stress input matters: the same step from other fields predicts other fields and positions
    other = sim._advance(batch, batch.prev_pos, batch.cur_pos, batch.next_pos, batch.cur_fields * 3 + 1)
    assert not torch.allclose(other[1]["stress"], f1["stress"])


def test_rollout_feeds_the_predicted_fields_back(tmp_path):
    from meshsim.datasets import TrajectoryFile
    from meshsim.models.rollout_loop import rollout

    data = _train_test.synthetic_store(tmp_path / "d.h5", num=1, frames=8)
    sim, _ = _trained_sim(data)
    with TrajectoryFile(data) as f:
        traj = f.read(f.ids[0])
    result = rollout(sim, traj, steps=3)
    static = sim.prepare(traj.mesh_pos, traj.cells, traj.node_type,
                         {k: float(traj.attrs[k]) for k in sim.cfg.material_keys})
    x = [torch.as_tensor(traj.world_pos[i]) for i in range(2)]
    stress = torch.as_tensor(traj.fields["stress"][1])[:, None]  # the last ground-truth frame's stress
    for k in range(3):
        nxt, fields = sim.step(static, x[-2], x[-1], torch.as_tensor(traj.world_pos[k + 2]), stress)
        np.testing.assert_allclose(result.pred_fields["stress"][k + 2], fields["stress"].numpy(), rtol=1e-4, atol=1e-3)
        x.append(nxt)
        stress = fields["stress"][:, None]


def test_a_field_input_model_needs_fields_and_data_that_has_them(tmp_path):
    from meshsim.datasets import TrajectoryFile
    from meshsim.models import ModelConfig
    from meshsim.models.rollout_loop import rollout

    with pytest.raises(ConfigError, match="field_input needs model.fields"):
        ModelConfig(field_input=True, fields=())
    data = _train_test.synthetic_store(tmp_path / "d.h5", num=1, frames=8)
    sim, _ = _trained_sim(data, kind="mgn")
    with TrajectoryFile(data) as f:
        traj = f.read(f.ids[0])
    static = sim.prepare(traj.mesh_pos, traj.cells, traj.node_type,
                         {k: float(traj.attrs[k]) for k in sim.cfg.material_keys})
    x0, x1 = (torch.as_tensor(traj.world_pos[i]) for i in range(2))
    with pytest.raises(DataFormatError, match="pass their values at t"):
        sim.step(static, x0, x1)
    traj.fields.pop("stress")
    with pytest.raises(DataFormatError, match="has no field 'stress'"):
        rollout(sim, traj, steps=2, traj_id="t0")
