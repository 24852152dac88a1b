"""Evaluate trained constitutive models against the analytic ground truth on NCLaw's generalization suites.

Each checkpoint knows its material and training scene. Suites build a new scene from it, simulate it once with
the true law and once with the learned one (no teacher forcing), and compare particle positions:

  reconstruction  the training scene itself
  time            the training scene run `time_factor` times longer
  velocity        random initial linear/angular velocities (|v| <= 3 m/s, omega in [0, 3]^3 rad/s), one per seed
  shape           the training material in new shapes (meshes shipped in meshsim.data/meshes)
  contact         bodies of every checkpoint's material thrown at each other (one model per material)

Metric (as NCLaw's diff_mse): mean over every `every`-th frame of the mean squared position error, m^2.
A learned rollout that leaves finite values is reported as diverged with its step.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import numpy as np
import torch

from meshsim.config import from_dict, to_dict
from meshsim.errors import ConfigError, SimulationError
from meshsim.outputs import output_folder, write_atomic
from meshsim.progress import progress

SUITES = ("reconstruction", "time", "velocity", "shape", "contact")
SHAPES = ("torus", "star", "blob")


def position_mse(pred: np.ndarray, gt: np.ndarray, every: int = 5) -> float:
    """Mean over frames 0, every, 2 every, ... of the mean squared particle-position error."""
    idx = np.arange(0, len(gt), every)
    return float(((pred[idx] - gt[idx]) ** 2).sum(-1).mean())


def compare(scene_cfg, laws_true: dict, laws_model: dict, seed: int = 0, every: int = 5,
            cache: dict | None = None) -> dict:
    """Simulate one scene with the true and the learned laws; errors and sizes.

    `cache` (a dict) keeps ground-truth rollouts across calls, keyed by scene and seed: several models
    evaluated on the same suites then simulate the truth once.
    """
    from meshsim.scenarios.mpm_blob import build_scene, rollout_scene, scene_material

    scene = build_scene(scene_cfg, seed)
    key = (json.dumps(to_dict(scene_cfg), sort_keys=True), seed)
    if cache is not None and key in cache:
        gt = cache[key]
    else:
        gt = rollout_scene(scene_cfg, scene, scene_material(scene, laws_true))["x"]
        if cache is not None:
            cache[key] = gt
    try:
        pred = rollout_scene(scene_cfg, scene, scene_material(scene, laws_model))["x"]
    except SimulationError as err:
        return {"mse": None, "diverged": str(err), "particles": len(scene.x), "frames": len(gt)}
    return {"mse": position_mse(pred, gt, every), "final_mse": float(((pred[-1] - gt[-1]) ** 2).sum(-1).mean()),
            "particles": len(scene.x), "frames": len(gt)}


def suite_scenes(name: str, scene_cfg, materials: list[str], time_factor: int = 2, seeds=(1, 7, 8)):
    """(label, scene config, seed) triples of one suite for a model trained on `scene_cfg`."""
    from meshsim.scenarios.mpm_blob import BodyConfig

    base = copy.deepcopy(scene_cfg)
    body = base.bodies[0]
    if name == "reconstruction":
        return [("train", base, 0)]
    if name == "time":
        return [(f"x{time_factor}", replace(base, steps=base.steps * time_factor), 0)]
    if name == "velocity":
        return [(f"seed{s}", replace(base, random_velocity=True), s) for s in seeds]
    if name == "shape":
        return [(s, replace(base, bodies=[replace(body, shape=s, size=0.45)]), 0) for s in SHAPES]
    if name == "contact":
        mats = materials if len(materials) > 1 else materials * 2
        k = len(mats)
        size = min(0.3, 0.8 / k)
        bodies = []
        for i, m in enumerate(mats):
            cx = 0.5 + (i - (k - 1) / 2) * (size + 0.05)
            bodies.append(BodyConfig(material=m, shape="cube", center=(cx, 0.35 + 0.15 * (i % 2), 0.5), size=size,
                                     velocity=(2.0 * np.sign((k - 1) / 2 - i), 0.0, 0.0), angular_velocity=(0, 0, 0)))
        return [("+".join(mats), replace(base, bodies=bodies), 0)]
    raise ConfigError(f"unknown evaluation suite {name!r}; choose from {', '.join(SUITES)}")


def evaluate(checkpoints: list[str], suites=SUITES, out: str | None = None, steps: int = 0, every: int = 5,
             seeds=(1, 7, 8), spacing: float = 0.0, cache: dict | None = None) -> dict:
    """Run the suites for every checkpoint; returns (and writes to `out`, atomically) the metrics dict.

    steps > 0 overrides the number of MPM steps of every scene (quick runs); spacing > 0 the particle spacing;
    `cache` keeps ground-truth rollouts for later calls (see `compare`).
    """
    from meshsim.physics.materials import preset
    from meshsim.scenarios.mpm_blob import MPMSceneConfig
    from meshsim.train.nclaw import load_checkpoint, model_from_checkpoint

    if not checkpoints:
        raise ConfigError("no checkpoint given: pass --checkpoint PATH (one per material)")
    bad = [s for s in suites if s not in SUITES]
    if bad:
        raise ConfigError(f"unknown evaluation suite {bad[0]!r}; choose from {', '.join(SUITES)}")
    if out is not None:
        output_folder(out)
    models, scenes = {}, {}
    for path in checkpoints:
        ckpt = load_checkpoint(path)
        model, _ = model_from_checkpoint(ckpt)
        material = ckpt["material"]
        scene = from_dict(MPMSceneConfig, ckpt["scene_config"], where=f"{path} scene_config")
        if steps > 0:
            scene = replace(scene, steps=steps - steps % scene.frame_every or scene.frame_every)
        if spacing > 0:
            scene = replace(scene, spacing=spacing)
        models[material], scenes[material] = model, scene
    truth = {m: preset(m) for m in models}
    results: dict = {"checkpoints": list(checkpoints), "metric": f"mean over every {every}th frame of the "
                     "mean squared particle position error (m^2)", "materials": {}}
    per_material = [s for s in suites if s != "contact"]
    bar = progress(len(scenes) * len(per_material) + ("contact" in suites), desc="nclaw eval", unit="suite")
    with torch.no_grad():
        for material, scene in scenes.items():
            res = {}
            for suite in per_material:
                res[suite] = {label: compare(cfg, truth, models, seed, every, cache)
                              for label, cfg, seed in suite_scenes(suite, scene, [material], seeds=seeds)}
                bar.update(1)
            results["materials"][material] = res
        if "contact" in suites:
            first = next(iter(scenes.values()))
            results["contact"] = {label: compare(cfg, truth, models, seed, every, cache)
                                  for label, cfg, seed in suite_scenes("contact", first, list(models))}
            bar.update(1)
    bar.close()
    results["summary"] = summarize(results)
    if out is not None:
        write_atomic(out, json.dumps(results, indent=2), unique=True)
    return results


def summarize(results: dict) -> dict:
    """Per material: mean error of reconstruction and of all out-of-distribution cases (None if any of them
    diverged), the number of diverged cases and the mean of each out-of-distribution suite (ood_time, ...)."""
    summary = {}
    for material, res in results["materials"].items():
        ood = [c["mse"] for s, cases in res.items() if s != "reconstruction" for c in cases.values()]
        rec = [c["mse"] for c in res.get("reconstruction", {}).values()]
        mean = lambda xs: None if not xs or any(x is None for x in xs) else float(np.mean(xs))  # noqa: E731
        summary[material] = {"reconstruction": mean(rec), "ood": mean(ood),
                             "diverged": sum(x is None for x in rec + ood),
                             **{f"ood_{s}": mean([c["mse"] for c in cases.values()])
                                for s, cases in res.items() if s != "reconstruction"}}
    return summary
