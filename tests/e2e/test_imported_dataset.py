"""docs/tutorial-training.md section 4 word for word on a small DeepMind-layout dataset written here:
import (TFRecord, dt 0 in meta.json), train MGN with world edges and kinematic input, roll out, evaluate."""

import importlib.resources
import json

import numpy as np
from procs import meshsim_cmd, run
from tfrecord.writer import TFRecordWriter

from meshsim.datasets import TrajectoryFile
from meshsim.datasets.schema import NodeType
from meshsim.mesh import slab

FRAMES = 6


def write_deforming_plate(folder, split, num, seed):
    """A clamped slab pushed down at its free end by a moving actuator node set (DeepMind's field layout)."""
    rng = np.random.default_rng(seed)
    mesh = slab((0.1, 0.04), 0.01, (6, 3), layers=1)
    points = mesh.points.astype(np.float32)
    n = len(points)
    node_type = np.full(n, NodeType.NORMAL, np.int32)
    node_type[points[:, 0] < 1e-6] = NodeType.HANDLE
    node_type[points[:, 0] > 0.1 - 1e-6] = NodeType.OBSTACLE
    features = {
        "cells": {"type": "static", "shape": [1, -1, 4], "dtype": "int32"},
        "node_type": {"type": "static", "shape": [1, -1, 1], "dtype": "int32"},
        "mesh_pos": {"type": "static", "shape": [1, -1, 3], "dtype": "float32"},
        "world_pos": {"type": "dynamic", "shape": [FRAMES, -1, 3], "dtype": "float32"},
        "stress": {"type": "dynamic", "shape": [FRAMES, -1, 1], "dtype": "float32"},
    }
    meta = {"simulator": "comsol", "dt": 0, "collision_radius": 0.03, "trajectory_length": FRAMES,
            "field_names": list(features), "features": features}
    (folder / "meta.json").write_text(json.dumps(meta))
    writer = TFRecordWriter(str(folder / f"{split}.tfrecord"))
    for _ in range(num):
        push = rng.uniform(0.002, 0.006)
        t = np.linspace(0, 1, FRAMES)[:, None, None]
        bend = (points[None, :, :1] / 0.1) ** 2  # 0 at the clamp, 1 at the actuator
        world = points[None] + t * push * bend * np.array([0, 0, -1], np.float32)
        stress = (1e6 * t[..., 0] * (1 - points[None, :, 0] / 0.1))[..., None]
        record = {"cells": mesh.cells.astype(np.int32)[None], "node_type": node_type[None, :, None],
                  "mesh_pos": points[None], "world_pos": world.astype(np.float32),
                  "stress": stress.astype(np.float32)}
        writer.write({k: (v.tobytes(), "byte") for k, v in record.items()})
    writer.close()


def meshsim(*args, cwd):
    return run(meshsim_cmd(*args), timeout=600, cwd=cwd)


def test_import_train_rollout_eval_as_the_tutorial_says(tmp_path):
    source = tmp_path / "deforming_plate"
    source.mkdir()
    write_deforming_plate(source, "train", 3, seed=0)
    write_deforming_plate(source, "valid", 1, seed=1)
    (tmp_path / "datasets" / "plate").mkdir(parents=True)
    for split in ("train", "valid"):
        out = meshsim("data", "import", source, "-o", f"datasets/plate/{split}.h5", "--split", split, "--dt", "0.01",
                      cwd=tmp_path)
        assert out.returncode == 0, out.stderr
    refused = meshsim("data", "import", source, "-o", "other.h5", "--split", "train", cwd=tmp_path)
    assert refused.returncode == 2 and "--dt" in refused.stderr  # dt 0 in meta.json: meshsim does not guess

    recipe = str(importlib.resources.files("meshsim.data") / "train_mgn_impact_plate.yaml")
    trained = meshsim("train", recipe, "name=mgn_plate", "train_data=[datasets/plate/train.h5]",
                      "valid_data=[datasets/plate/valid.h5]", "model.world_edges=true", "model.contact_radius=0.03",
                      "model.kinematic_input=true", "model.predicted_types=[NORMAL]", "model.material_keys=[]",
                      "model.noise_std=0.003", "steps=12", "warmup_steps=2", "val_interval=6", "val_steps=3",
                      "checkpoint_interval=6", "model.latent=16", "model.blocks=2", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    ckpt = tmp_path / "runs" / "mgn_plate" / "checkpoints" / "last.pt"
    rolled = meshsim("rollout", ckpt, "datasets/plate/valid.h5", "-o", "rollout.h5", cwd=tmp_path)
    assert rolled.returncode == 0, rolled.stderr[-2000:]
    with TrajectoryFile(tmp_path / "rollout.h5") as f:
        traj = f.read(f.ids[0])
    kinematic = traj.node_type != NodeType.NORMAL
    # Nodes the model does not predict (actuator, clamp) follow the ground truth exactly.
    np.testing.assert_array_equal(traj.pred_world_pos[:, kinematic], traj.world_pos[:, kinematic])
    evaluated = meshsim("eval", "rollout.h5", "--json", "eval.json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads((tmp_path / "eval.json").read_text())
    assert np.isfinite(report["mean"]["p_all"])
