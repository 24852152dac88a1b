"""Two CPU processes under torchrun (gloo): training runs, only rank 0 writes, replicas end bit-identical."""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path

import torch
import yaml
from procs import run as run_bounded

from meshsim.train.checkpoint import read_checkpoint, state_digest
from meshsim.train.logging import read_metrics

_spec = importlib.util.spec_from_file_location("_train_test", Path(__file__).with_name("test_train.py"))
_train_test = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_train_test)


def test_two_process_torchrun_trains_and_replicas_agree(tmp_path):
    data = _train_test.synthetic_store(tmp_path / "train.h5", num=4, frames=6)
    cfg = {"train_data": [str(data)], "valid_data": [str(data)], "model": dict(_train_test.TINY_MODEL),
           "optim": {"lr": 1e-3}, "batch_size": 2, "steps": 4, "warmup_steps": 1, "log_interval": 1,
           "checkpoint_interval": 2, "val_interval": 4, "val_rollouts": 1, "val_steps": 2, "device": "cpu"}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "meshsim",
           "train", str(tmp_path / "cfg.yaml"), "--run-dir", str(run)]
    proc = run_bounded(cmd, timeout=240, env=env, cwd=tmp_path)  # torchrun and both workers end on every path
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("trained 4 steps on 2 process(es)") == 1  # rank 0 alone reports

    ckpt = read_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["step"] == 4
    digests = ckpt["replica_digests"]
    assert len(digests) == 2 and digests[0] == digests[1] == state_digest(ckpt["model"])
    assert len(ckpt["rng"]["ranks"]) == 2
    assert not torch.equal(ckpt["rng"]["ranks"][0]["torch"], ckpt["rng"]["ranks"][1]["torch"])  # own noise
    rows = read_metrics(run / "metrics.csv")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(math.isfinite(r["loss"]) for r in rows) and math.isfinite(rows[-1]["val_p_all"])
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "last.pt"]


def test_process_group_ends_only_after_the_model_wrapper_is_gone(tmp_path, monkeypatch):
    """The gloo teardown deadlock: destroy_process_group while the DDP wrapper (its reducer) was still alive in
    the trainer's frame left rank 1 hanging. The group's end (D.finish) must find no wrapper reachable."""
    import gc

    from meshsim.train import distributed as D
    from meshsim.train import trainer

    seen = []

    def finish(env):
        gc.collect()
        seen.append(sum(isinstance(o, trainer._LossModule) for o in gc.get_objects()))

    monkeypatch.setattr(D, "finish", finish)
    data = _train_test.synthetic_store(tmp_path / "train.h5", num=2, frames=4)
    cfg = _train_test.tiny_config(tmp_path, data, steps=2, valid_data=[], checkpoint_interval=2)
    trainer.train(cfg, show_progress=False)
    assert seen == [0]
