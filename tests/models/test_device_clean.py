"""Device-clean learned steps: no device tensor becomes numpy or a Python number inside a step.

On CUDA each such conversion is a host sync, and `np.asarray` of a CUDA tensor fails outright. A CPU machine
cannot tell a device tensor from a host one, so while a step runs every conversion is refused:
`Tensor.__array__`, `.numpy()`, `.item()`, `.tolist()`, `float()`, `int()`. Graph building from file arrays
(numpy in, tensors out) stays allowed, and so do the Warp ops of kernels/, which read back the sizes of
data-dependent outputs (their own business, measured in benchmarks/kernels.py).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import sys
from pathlib import Path

import meshsim.kernels
import numpy as np
import pytest
import torch

from meshsim.datasets.trajectory import Trajectory
from meshsim.models import LearnedSimulator, ModelConfig
from meshsim.rollout import rollout

_spec = importlib.util.spec_from_file_location("_learned_models", Path(__file__).with_name("test_models.py"))
_models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_models)
ATTRS, TINY, trajectory, windows = _models.ATTRS, _models.TINY, _models.trajectory, _models.windows

GUARDED = ("__array__", "numpy", "item", "tolist", "__float__", "__int__")


ALLOWED = (Path(meshsim.kernels.__file__).resolve().parent, Path(torch.__file__).resolve().parent)


def _in_ops(filename: str) -> bool:
    """The Warp ops in kernels/ may read back what they must (sizes of data-dependent outputs, argument checks);
    torch's own code too (Adam's step counter is a CPU tensor by design)."""
    path = Path(filename).resolve()
    return any(path.is_relative_to(root) for root in ALLOWED)


class HostConversion(AssertionError):
    pass


@contextlib.contextmanager
def no_host_conversions():
    saved = {name: getattr(torch.Tensor, name) for name in GUARDED}

    def refuse(name):
        original = saved[name]

        def method(self, *args, **kwargs):
            if _in_ops(sys._getframe(1).f_code.co_filename):
                return original(self, *args, **kwargs)
            raise HostConversion(f"Tensor.{name} called inside a step (tensor of shape {tuple(self.shape)})")
        return method

    try:
        for name in GUARDED:
            setattr(torch.Tensor, name, refuse(name))
        yield
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)


def guarded(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with no_host_conversions():
            return fn(*args, **kwargs)
    return wrapper


def test_the_guard_refuses_each_conversion():
    t = torch.ones(2)
    for convert in (np.asarray, lambda x: x.numpy(), lambda x: x[0].item(), lambda x: x.tolist(),
                    lambda x: float(x[0]), lambda x: int(x[0])):
        with no_host_conversions(), pytest.raises(HostConversion):
            convert(t)
    assert float(t[0]) == 1.0 and np.asarray(t).shape == (2,)  # restored afterwards


def _traj() -> Trajectory:
    mesh_pos, cells, node_type, world, stress = trajectory(frames=6)
    return Trajectory(cells=cells.astype(np.int32), mesh_pos=mesh_pos, node_type=node_type.astype(np.int32),
                      world_pos=world, dt=0.01, fields={"stress": stress}, attrs=dict(ATTRS))


def _sim(kind: str, device: str = "cpu") -> LearnedSimulator:
    torch.manual_seed(0)
    sim = LearnedSimulator(ModelConfig(kind=kind, fields=("stress",), **TINY), dim=2).to(device)
    sim.loss(sim.collate(windows(trajectory())).to(device), accumulate_stats=True)
    return sim.eval()


@pytest.mark.parametrize("kind", ["hcmt", "mgn"])
def test_rollout_steps_stay_on_the_device(kind, device, monkeypatch):
    """rollout(): the per-mesh prepare and every step run under the guard."""
    sim = _sim(kind, device)
    monkeypatch.setattr(sim, "prepare", guarded(sim.prepare))
    monkeypatch.setattr(sim, "step", guarded(sim.step))
    result = rollout(sim, _traj(), steps=3)
    assert result.pred_world_pos.shape[0] == 5 and np.isfinite(result.pred_world_pos).all()


def test_study_steps_stay_on_the_device(device, monkeypatch):
    from meshsim.study import _learned_rollouts

    sim = _sim("hcmt", device)
    monkeypatch.setattr(sim, "prepare", guarded(sim.prepare))
    monkeypatch.setattr(sim, "step", guarded(sim.step))
    [(pred, stress)] = _learned_rollouts(sim, [_traj()], [5])
    assert pred.shape[0] == 5 and stress.shape[0] == 5


@pytest.mark.parametrize("kind", ["hcmt", "mgn"])
def test_a_training_step_stays_on_the_device(kind, device):
    """Loss, backward and optimizer step of a collated batch (graph building happens before, in the loader)."""
    sim = _sim(kind, device).train()
    batch = sim.collate(windows(trajectory())).to(device)
    optimizer = torch.optim.Adam(sim.parameters(), lr=1e-3)
    with no_host_conversions():
        loss, logs = sim.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.isfinite(loss) and set(logs) >= {"loss"}
