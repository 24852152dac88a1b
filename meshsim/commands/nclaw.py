"""`meshsim nclaw generate | train | eval`: neural constitutive laws learned inside differentiable MPM."""

from __future__ import annotations

import json

from meshsim.commands import add_command, add_threads_flag, command_group

THREADS_HELP = "CPU threads for torch and the MPM solver (default 1: results do not depend on the machine)"


def _threads(n: int) -> None:
    import torch

    from meshsim.errors import ConfigError

    if n < 1:
        raise ConfigError(f"--threads must be >= 1, got {n}")
    torch.set_num_threads(n)  # small per-particle tensors: extra threads mostly wait on each other


def _generate(args) -> int:
    from meshsim.scenarios.mpm_generate import generate_ground_truth

    _threads(args.threads)
    done = generate_ground_truth(args.out, args.material, args.set, args.config, args.seed)
    print(json.dumps({"out": args.out, "written": done}))
    return 0


def _train(args) -> int:
    from meshsim.config import load_config
    from meshsim.train.nclaw import NCLawTrainConfig, train_nclaw

    _threads(args.threads)
    overrides = list(args.set) + ([f"data={args.data}"] if args.data else [])
    cfg = load_config(NCLawTrainConfig, args.config, overrides)
    print(json.dumps(train_nclaw(cfg, args.out, resume=not args.no_resume)))
    return 0


def _eval(args) -> int:
    from meshsim.train.nclaw_eval import SUITES, evaluate

    _threads(args.threads)
    res = evaluate(args.checkpoint, args.suite or SUITES, args.out, steps=args.steps, seeds=tuple(args.seeds))
    print(json.dumps(res["summary"]))
    return 0


def register(subparsers) -> None:
    sub = command_group(subparsers, "nclaw", "neural constitutive laws in differentiable MPM (generate, train, eval)")

    g = add_command(sub, "generate", _generate,
                    help="ground-truth particle trajectories, one per material, into an HDF5 store")
    g.add_argument("--out", required=True, help="HDF5 file to create or resume")
    g.add_argument("--material", action="append", default=[],
                   help="jelly | plasticine | sand | water (repeatable; none: the config's own body materials)")
    g.add_argument("--config", help="scene YAML (e.g. data/nclaw_scene.yaml)")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="scene override, e.g. steps=1000")
    g.add_argument("--seed", type=int, default=0)
    add_threads_flag(g, default=1, help=THREADS_HELP)

    t = add_command(sub, "train", _train,
                    help="fit a constitutive model to one trajectory (resumes from OUT/checkpoint.pt)")
    t.add_argument("--data", help="HDF5 store from `meshsim nclaw generate` (or data= in the config)")
    t.add_argument("--out", required=True, help="run folder: checkpoint.pt, metrics.csv")
    t.add_argument("--config", help="training YAML (e.g. data/nclaw_train.yaml)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. trajectory=jelly epochs=10")
    t.add_argument("--no-resume", action="store_true", help="start over even if OUT/checkpoint.pt exists")
    add_threads_flag(t, default=1, help=THREADS_HELP)

    e = add_command(sub, "eval", _eval, help="generalization suites against the analytic ground truth; metrics JSON")
    e.add_argument("--checkpoint", action="append", default=[], required=True, help="checkpoint.pt (one per material)")
    e.add_argument("--suite", action="append", default=[], help="reconstruction | time | velocity | shape | contact")
    e.add_argument("--out", help="metrics JSON file")
    e.add_argument("--steps", type=int, default=0, help="override the MPM steps of every scene (quick runs)")
    e.add_argument("--seeds", type=int, nargs="+", default=[1, 7, 8], help="seeds of the velocity suite")
    add_threads_flag(e, default=1, help=THREADS_HELP)
