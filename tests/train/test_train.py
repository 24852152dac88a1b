"""Training: config validation, learning-rate schedule, data order, checkpoints (format, refusal), exact resume."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from meshsim.cli import main
from meshsim.config import load_config
from meshsim.errors import CheckpointError, ConfigError
from meshsim.train import distributed as D
from meshsim.train.checkpoint import read_checkpoint, save_checkpoint
from meshsim.train.config import OptimConfig, TrainConfig
from meshsim.train.logging import read_metrics

TINY_MODEL = {"latent": 16, "mlp_layers": 1, "blocks": 2, "cmt_blocks": 1, "levels": 1, "heads": 2,
              "contact_radius": 0.3}


def synthetic_store(path, num=3, frames=8, seed=0):
    """A cantilever plate (left column clamped) swinging with damped motion, and a small obstacle moving down."""
    from meshsim.datasets import Trajectory, TrajectoryWriter
    from meshsim.datasets.schema import NodeType

    rng = np.random.default_rng(seed)
    nx, ny = 6, 3
    xs, ys = np.meshgrid(np.linspace(0, 1, nx), np.linspace(0, 0.4, ny))
    plate = np.stack([xs.ravel(), ys.ravel()], 1)
    cells = []
    for j in range(ny - 1):
        for i in range(nx - 1):
            a = j * nx + i
            cells += [[a, a + 1, a + nx + 1], [a, a + nx + 1, a + nx]]
    ball = np.array([[0.7, 0.6], [0.8, 0.6], [0.75, 0.7]])
    mesh_pos = np.concatenate([plate, ball]).astype(np.float32)
    cells = np.concatenate([np.array(cells), [[len(plate), len(plate) + 1, len(plate) + 2]]]).astype(np.int32)
    node_type = np.full(len(mesh_pos), int(NodeType.NORMAL), np.int32)
    node_type[: len(plate)][plate[:, 0] == 0] = int(NodeType.HANDLE)
    node_type[len(plate):] = int(NodeType.OBSTACLE)
    t = np.arange(frames)[:, None]
    with TrajectoryWriter(path) as w:
        for k in range(num):
            amp, freq = rng.uniform(0.03, 0.08), rng.uniform(0.1, 0.2)
            disp = amp * np.exp(-0.1 * t) * np.sin(2 * np.pi * freq * t + 0.5) * mesh_pos[None, : len(plate), 0] ** 2
            world = np.repeat(mesh_pos[None], frames, 0).astype(np.float64)
            world[:, : len(plate), 1] += disp
            world[:, len(plate):, 1] -= 0.01 * t
            stress = np.zeros((frames, len(mesh_pos)), np.float32)
            stress[:, : len(plate)] = 1e3 * np.abs(disp)
            w.write(f"{k:05d}", Trajectory(
                cells=cells, mesh_pos=mesh_pos, node_type=node_type, world_pos=world.astype(np.float32),
                dt=0.01, fields={"stress": stress}, attrs={"density": 1000.0 + k, "youngs_modulus": 1e6 * (1 + k)}))
    return path


def tiny_config(tmp_path, data, **over) -> TrainConfig:
    values = {"train_data": [str(data)], "valid_data": [str(data)], "model": dict(TINY_MODEL),
              "optim": {"lr": 1e-3, "decay_steps": 50}, "run_dir": str(tmp_path / "run"), "batch_size": 2,
              "steps": 6, "warmup_steps": 1, "log_interval": 1, "checkpoint_interval": 3, "val_interval": 3,
              "val_rollouts": 1, "val_steps": 3, "device": "cpu"}
    values.update(over)
    from meshsim.config import from_dict

    return from_dict(TrainConfig, values)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return synthetic_store(tmp_path_factory.mktemp("data") / "train.h5")


def test_learning_rate_decays_exponentially_down_to_the_floor():
    opt = OptimConfig(lr=1e-4, decay_rate=0.1, decay_steps=1000, min_lr=2e-6)
    assert opt.lr * opt.lr_factor(0) == pytest.approx(1e-4)
    assert opt.lr * opt.lr_factor(500) == pytest.approx(1e-4 * 0.1**0.5)
    assert opt.lr * opt.lr_factor(1000) == pytest.approx(1e-5)
    assert opt.lr * opt.lr_factor(5000) == pytest.approx(2e-6)  # floor


def test_learning_rate_can_decay_over_the_wall_clock_budget():
    opt = OptimConfig(lr=1e-3, decay_rate=0.1, decay_steps=10, over_budget=True)
    assert opt.lr * opt.lr_factor(10**6, budget_spent=0.0) == pytest.approx(1e-3)  # steps no longer count
    assert opt.lr * opt.lr_factor(3, budget_spent=0.5) == pytest.approx(1e-3 * 0.1**0.5)
    assert opt.lr * opt.lr_factor(3, budget_spent=1.7) == pytest.approx(1e-4)  # past the budget: the end rate
    with pytest.raises(ConfigError, match="time_limit_minutes"):
        TrainConfig(train_data=["x.h5"], optim=opt)


def test_data_order_is_a_pure_function_of_seed_and_epoch_and_ranks_partition_it():
    a = D.rank_batches(23, 2, seed=5, epoch=3, rank=0, world=1)
    assert np.array_equal(a, D.rank_batches(23, 2, seed=5, epoch=3, rank=0, world=1))
    assert not np.array_equal(a, D.rank_batches(23, 2, seed=5, epoch=4, rank=0, world=1))
    r0, r1 = (D.rank_batches(23, 2, seed=5, epoch=3, rank=r, world=2) for r in (0, 1))
    assert r0.shape == r1.shape == (5, 2)  # 23 // (2*2) steps, the tail dropped
    both = np.concatenate([r0.ravel(), r1.ravel()])
    assert len(set(both.tolist())) == 20  # disjoint shards
    assert set(both.tolist()) <= set(D.epoch_order(23, 5, 3)[:20].tolist())


@pytest.mark.parametrize("override, words", [
    (["steps=0"], "steps"), (["optim.decay_rate=1.5"], "decay_rate"), (["batch_size=two"], "batch_size"),
    (["learning_rate=1"], "unknown key 'learning_rate'"), (["model.kind=gcn"], "model.kind"),
    (["warmup_steps=10", "steps=5"], "warmup_steps"), (["device=tpu"], "device"),
])
def test_bad_config_values_are_refused_with_the_key(override, words):
    with pytest.raises(ConfigError, match=words):
        load_config(TrainConfig, None, override)


def test_cli_bad_config_exits_2_with_one_line(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train_data: [x.h5]\nstepz: 3\n")
    assert main(["train", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown key 'stepz'" in err[0]
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert main(["train", str(cfg), "stepz=1", "model.latent=-4"]) == 2
    capsys.readouterr()
    assert main(["train", str(cfg), "steps=3", "--bogus"]) == 2  # flags may follow overrides; unknown ones fail
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unexpected argument '--bogus'" in err[0]


def test_checkpoint_refuses_other_formats_versions_and_pickled_code(tmp_path):
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"model_config": {}, "dim": 2, "model": {"w": torch.ones(2)}, "step": 3})
    assert read_checkpoint(good)["step"] == 3
    other = tmp_path / "other.pt"
    torch.save({"format": "something.else", "version": 1}, other)
    with pytest.raises(CheckpointError, match="not a meshsim checkpoint"):
        read_checkpoint(other)
    old = tmp_path / "old.pt"
    torch.save({"format": "meshsim.checkpoint", "version": 99, "model": {}}, old)
    with pytest.raises(CheckpointError, match="version 99"):
        read_checkpoint(old)
    evil = tmp_path / "evil.pt"
    torch.save({"format": "meshsim.checkpoint", "version": 1, "payload": _Payload()}, evil)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        read_checkpoint(evil)
    assert not _Payload.ran
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(good.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="unreadable or truncated"):
        read_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "none.pt")


class _Payload:
    ran = False

    def __reduce__(self):  # unpickling would call this: a code-execution payload
        return (_Payload._mark, ())

    @staticmethod
    def _mark():
        _Payload.ran = True
        return None


def test_pickle_payload_is_really_code(tmp_path):
    # The refusal above matters: a plain pickle load of that file runs the payload.
    _Payload.ran = False
    pickle.loads(pickle.dumps(_Payload()))
    assert _Payload.ran
    _Payload.ran = False


def test_resume_repeats_the_uninterrupted_run_exactly(tmp_path, store):
    from meshsim.train.trainer import train

    full = train(tiny_config(tmp_path / "a", store), show_progress=False)
    first = train(tiny_config(tmp_path / "b", store, steps=3), show_progress=False)
    assert first.step == 3
    at_three = read_checkpoint(first.run_dir / "checkpoints" / "last.pt")
    resumed = train(tiny_config(tmp_path / "b", store), resume=True, show_progress=False)
    assert resumed.step == full.step == 6

    rows_a = read_metrics(full.run_dir / "metrics.csv")
    rows_b = read_metrics(resumed.run_dir / "metrics.csv")
    assert [r["step"] for r in rows_b] == [1, 2, 3, 4, 5, 6]  # no row lost or duplicated
    assert [r["loss"] for r in rows_b] == [r["loss"] for r in rows_a]
    assert all(math.isfinite(r["loss"]) for r in rows_a)
    assert rows_a[0]["warmup"] == 1 and rows_a[1]["warmup"] == 0
    assert rows_a[1]["lr"] == pytest.approx(1e-3 * 0.1 ** (1 / 50))

    ckpt_a = read_checkpoint(full.run_dir / "checkpoints" / "last.pt")
    ckpt_b = read_checkpoint(resumed.run_dir / "checkpoints" / "last.pt")
    assert ckpt_a["step"] == ckpt_b["step"] == 6
    for key, value in ckpt_a["model"].items():
        assert torch.equal(value, ckpt_b["model"][key]), key
    assert ckpt_a["best_metric"] == ckpt_b["best_metric"] < math.inf
    assert (full.run_dir / "checkpoints" / "best.pt").is_file()
    assert (full.run_dir / "config.resolved.yaml").is_file()
    # training went on after the resume: weights and normalizer statistics moved
    moved = [k for k, v in ckpt_b["model"].items() if not torch.equal(v, at_three["model"][k])]
    assert any(k.startswith("network.") for k in moved) and any("normalizer" in k for k in moved)


def test_graphs_built_in_loader_workers_train_exactly_like_in_the_main_process(tmp_path, store):
    """GraphBuilder.collate is the DataLoader's collate_fn: with worker processes the run is the same."""
    from meshsim.train.trainer import train

    here = train(tiny_config(tmp_path / "a", store, steps=3, num_workers=0), show_progress=False)
    workers = train(tiny_config(tmp_path / "b", store, steps=3, num_workers=1), show_progress=False)
    rows_a = read_metrics(here.run_dir / "metrics.csv")
    rows_b = read_metrics(workers.run_dir / "metrics.csv")
    assert [r["loss"] for r in rows_b] == [r["loss"] for r in rows_a]
    ckpt_a = read_checkpoint(here.run_dir / "checkpoints" / "last.pt")
    ckpt_b = read_checkpoint(workers.run_dir / "checkpoints" / "last.pt")
    for key, value in ckpt_a["model"].items():
        assert torch.equal(value, ckpt_b["model"][key]), key


def test_run_folder_is_not_overwritten_without_resume(tmp_path, store):
    from meshsim.errors import OutputError
    from meshsim.train.trainer import train

    cfg = tiny_config(tmp_path, store, steps=2, checkpoint_interval=2, valid_data=[])
    train(cfg, show_progress=False)
    with pytest.raises(OutputError, match="--resume"):
        train(cfg, show_progress=False)
    with pytest.raises(ConfigError, match="raise steps"):
        train(cfg, resume=True, show_progress=False)
    with pytest.raises(CheckpointError, match="does not exist"):
        train(tiny_config(tmp_path / "fresh", store), resume=True, show_progress=False)


def test_time_limit_stops_early_with_a_checkpoint(tmp_path, store, capsys):
    from meshsim.train.trainer import train

    cfg = tiny_config(tmp_path, store, steps=10_000, time_limit_minutes=1e-6, checkpoint_interval=5000,
                      val_interval=0, valid_data=[], tensorboard=True)
    result = train(cfg, show_progress=False)
    # TensorBoard is optional: events when it is installed, one note otherwise; metrics.csv always
    assert (result.run_dir / "tensorboard").is_dir() or "tensorboard is not installed" in capsys.readouterr().err
    assert 1 <= result.step < 10_000
    assert read_checkpoint(result.run_dir / "checkpoints" / "last.pt")["step"] == result.step
    assert [r["step"] for r in read_metrics(result.run_dir / "metrics.csv")][-1] == result.step
