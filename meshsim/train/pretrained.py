"""Pretrained models shipped with meshsim: weights users get without training.

The registry is `data/pretrained/models.yaml` (installed as `meshsim.data`); each entry names a model-only
checkpoint beside it, the scene it was trained on, how to reproduce it and the held-out figures it reached.
Wherever a checkpoint path is accepted (`meshsim rollout`, `meshsim study`, `load_model`), a registered name
works too:

    meshsim models                                              # what is installed
    meshsim rollout hcmt-impact-plate-2d test.h5 -o rollout.h5

`export_model(run_checkpoint, out)` writes a model-only file (weights, normalizer statistics, configs, training
step; no optimizer or RNG state) of the kind shipped here.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshsim.errors import CheckpointError

if TYPE_CHECKING:
    import torch

REGISTRY = "pretrained/models.yaml"


def _folder() -> Path:
    return Path(str(importlib.resources.files("meshsim.data").joinpath("pretrained")))


def registry() -> dict[str, dict[str, Any]]:
    """{name: entry} of every shipped model (empty when none is installed)."""
    import yaml

    path = _folder() / "models.yaml"
    if not path.is_file():
        return {}
    entries = yaml.safe_load(path.read_text()) or {}
    return {name: {**entry, "path": str(_folder() / entry["file"])} for name, entry in entries.items()}


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """A checkpoint file for `name_or_path`: an existing file as given, else a shipped model's file.
    An unknown name fails in one line that lists the shipped models (and the closest match)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    models = registry()
    key = str(name_or_path)
    if key in models:
        shipped = Path(models[key]["path"])
        if not shipped.is_file():
            raise CheckpointError(f"shipped model {key!r} is registered but its file {shipped} is missing: "
                                  "reinstall meshsim")
        return shipped
    if path.suffix in (".pt", ".pth") or "/" in key:
        raise CheckpointError(f"checkpoint {path} not found: pass a file written by `meshsim train` or a shipped "
                              f"model name ({', '.join(models) or 'none installed'})")
    close = difflib.get_close_matches(key, list(models), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise CheckpointError(f"{key!r} is neither a checkpoint file nor a shipped model{hint}: `meshsim models` lists "
                          f"them ({', '.join(models) or 'none installed'})")


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """(LearnedSimulator in eval mode, checkpoint dict) from a checkpoint file or a shipped model's name."""
    from meshsim.models.checkpoint import read_checkpoint, simulator_from_checkpoint

    path = resolve_checkpoint(path)  # a file, or the name of a shipped model
    ckpt = read_checkpoint(path)
    return simulator_from_checkpoint(ckpt, path).to(device), ckpt


def export_model(checkpoint: str | Path, out: str | Path) -> Path:
    """Write the model-only part of a training checkpoint to `out` (atomically); returns `out`."""
    from meshsim.models.checkpoint import read_checkpoint, save_checkpoint

    ckpt = read_checkpoint(resolve_checkpoint(checkpoint))
    keep = {k: ckpt[k] for k in ("model_config", "dim", "model", "step", "best_metric", "train_config",
                                  "cpu_seconds") if k in ckpt}
    save_checkpoint(Path(out), keep)
    return Path(out)


def check_model(name_or_path: str | Path, check: dict[str, Any]) -> dict[str, float]:
    """Roll a model out over one freshly simulated trajectory and score it (the figures a shipped model's
    registry entry records under `check`, and its test compares with): `check` holds the scene, its overrides,
    the generation seed and trajectory index, and the number of rollout steps."""
    from meshsim.metrics import evaluate_trajectory
    from meshsim.models.rollout_loop import rollout, rollout_trajectory

    traj = _check_trajectory(check["scene"], tuple(check.get("overrides", [])), int(check["seed"]),
                             int(check.get("index", 0)))
    sim, _ = load_model(name_or_path)
    result = rollout(sim, traj, int(check["steps"]))
    summary = evaluate_trajectory(rollout_trajectory(traj, result)).summary()
    return {k: summary[k] for k in ("p1", "p_all", "p_all_hold", "skill", "NORMAL_p_all", "NORMAL_p_all_hold")
            if summary.get(k) is not None}


@functools.lru_cache(maxsize=2)  # models of one scene share their check trajectory: simulate it once
def _check_trajectory(scene: str, overrides: tuple[str, ...], seed: int, index: int):
    from meshsim.scenarios import get_scenario, trajectory_seed

    scenario = get_scenario(scene)
    return scenario.simulate(scenario.make_config(list(overrides)), trajectory_seed(seed, index))


def format_models(models: dict[str, dict[str, Any]]) -> str:
    """The table printed by `meshsim models`."""
    if not models:
        return "no pretrained models are installed"
    w_name = max(len("name"), *(len(name) for name in models))  # columns as wide as their longest entry
    w_trained = max(len("trained"), *(len(str(m.get("trained", "?"))) for m in models.values()))
    lines = [f"{'name':<{w_name}} {'scene':<20} {'kind':<5} {'trained':<{w_trained}} "
             "held-out RMSE-all (hold still, skill)"]
    for name, m in models.items():
        figures = m.get("test", {})
        shown = "-"
        if figures.get("p_all") is not None:
            shown = f"{figures['p_all']:.2f} mm ({figures.get('p_all_hold', float('nan')):.2f}, " \
                    f"{figures.get('skill', float('nan')):+.2f})"
        lines.append(f"{name:<{w_name}} {m.get('scene', '?'):<20} {m.get('kind', '?'):<5} "
                     f"{m.get('trained', '?'):<{w_trained}} {shown}")
    lines.append("use a name wherever a checkpoint is accepted, e.g. "
                 f"`meshsim rollout {next(iter(models))} DATA.h5 -o rollout.h5`; details: benchmarks/RESULTS.md")
    return "\n".join(lines)
