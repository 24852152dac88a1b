"""Ship a trained model: export its weights into data/pretrained/ and record its figures in models.yaml.

    python tools/register_pretrained.py RUN/checkpoints/best.pt hcmt-impact-plate-2d --scene impact-plate-2d \
        --test DATA/test.h5 --check-overrides preset=benchmark --reproduce "tools/train_pretrained.sh impact ..."

The entry records what a user needs to trust the weights: the scene and its size, the training budget and step,
the exact reproduction command, the held-out figures beside holding still (benchmarks/accuracy.evaluate over
every trajectory of --test), and a `check`: one freshly simulated trajectory (scene, overrides, seed, steps) and
the figures this model reaches on it, which tests/train/test_pretrained.py reproduces.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "data" / "pretrained"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("name")
    ap.add_argument("--scene", required=True)
    ap.add_argument("--test", required=True, help="held-out trajectories (a seed used for neither training nor "
                                                  "validation)")
    ap.add_argument("--check-overrides", nargs="*", default=[], help="scene overrides of the check trajectory")
    ap.add_argument("--check-seed", type=int, default=2)
    ap.add_argument("--check-steps", type=int, default=48)
    ap.add_argument("--reproduce", required=True, help="the command that trained it")
    ap.add_argument("--data-command", required=True, help="the command that generated its data")
    ap.add_argument("--description", default="")
    ap.add_argument("--trained", default=None, help="the budget as `meshsim models` shows it, where CPU minutes "
                                                    "do not say it (e.g. '7 min on one H200'); default: CPU-min")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from accuracy import evaluate

    from meshsim.train.checkpoint import read_checkpoint
    from meshsim.train.pretrained import check_model, export_model

    FOLDER.mkdir(parents=True, exist_ok=True)
    out = export_model(args.checkpoint, FOLDER / f"{args.name}.pt")
    ckpt = read_checkpoint(out)
    train_cfg = ckpt.get("train_config", {})
    test = evaluate(out, Path(args.test), "cpu")
    keys = ("p1", "p_all", "p_all_hold", "p_all_cv", "skill", "NORMAL_p_all", "NORMAL_p_all_hold", "NORMAL_skill",
            "OBSTACLE_p_all", "OBSTACLE_p_all_hold", "s_all", "s_all_hold", "s_skill", "worse_than_hold", "diverged",
            "rollouts", "rollout_step_seconds")
    check = {"scene": args.scene, "overrides": list(args.check_overrides), "seed": args.check_seed, "index": 0,
             "steps": args.check_steps}
    check["figures"] = {k: round(float(v), 4) for k, v in check_model(out, check).items()}
    cpu_minutes = float(ckpt.get("cpu_seconds", 0.0)) / 60
    entry = {
        "file": out.name,
        "scene": args.scene,
        "kind": ckpt["model_config"]["kind"],
        "description": args.description,
        "steps": int(ckpt["step"]),
        "trained": args.trained or f"{cpu_minutes:.0f} CPU-min, {int(ckpt['step'])} steps",
        "cpu_minutes": round(cpu_minutes, 1),
        "seed": train_cfg.get("seed"),
        "reproduce": args.reproduce,
        "data": args.data_command,
        "test": {"file": str(args.test), **{k: (None if test.get(k) is None else round(float(test[k]), 4))
                                            for k in keys}},
        "check": check,
    }
    registry = FOLDER / "models.yaml"
    entries = yaml.safe_load(registry.read_text()) if registry.is_file() else {}
    entries = entries or {}
    entries[args.name] = entry
    header = ("# Pretrained models shipped with meshsim (`meshsim models`); written by tools/register_pretrained.py.\n"
              "# test: held-out figures (x1e-3 m; stress MPa) beside holding still; check: the figure\n"
              "# tests/train/test_pretrained.py reproduces on a freshly simulated trajectory.\n")
    registry.write_text(header + yaml.safe_dump(entries, sort_keys=False))
    print(yaml.safe_dump({args.name: entry}, sort_keys=False))


if __name__ == "__main__":
    main()
