"""Training levers in the trainer: unrolled (pushforward) steps, and the CPU-time budget with its snapshots."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from meshsim.errors import ConfigError

_spec = importlib.util.spec_from_file_location("_train_test", Path(__file__).with_name("test_train.py"))
_train_test = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_train_test)


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
    # resumed with the same budget (tools/train_pretrained.sh re-runs every spent stage): no step, last.pt untouched
    last_bytes = (ckpts / "last.pt").read_bytes()
    again = train(cfg, resume=True, show_progress=False)
    assert again.step == result.step and (ckpts / "last.pt").read_bytes() == last_bytes
    with pytest.raises(ConfigError, match="snapshot_cpu_minutes"):
        _train_test.tiny_config(tmp_path, data, snapshot_cpu_minutes=[0])
