"""`meshsim generate SCENE --num N --out FILE.h5 [--workers K] [--seed S] [--shard i/n] [key=value ...]`."""

from __future__ import annotations

import argparse

from meshsim.commands import add_command


def register(subparsers) -> None:
    p = add_command(
        subparsers, "generate", run,
        help="simulate trajectories of a scenario into an HDF5 store (parallel, resumable)",
        description="Simulate trajectories of SCENE into FILE.h5. Re-running the same command resumes: finished "
        "trajectories are skipped. key=value overrides set scenario parameters (preset=benchmark for the "
        "published-benchmark size). Under torchrun each rank writes its own shard file.",
    )
    _add_flags(p, argparse.SUPPRESS)
    p.add_argument("scene", metavar="SCENE", nargs="?", help="scenario name, e.g. impact-plate-2d (see --list)")
    # REMAINDER so that flags may also follow the overrides; they are parsed again in run().
    p.add_argument("overrides", metavar="key=value", nargs=argparse.REMAINDER,
                   help="scenario parameters, e.g. num_frames=30 preset=benchmark")
    p.set_defaults(subparser=p)  # `meshsim generate` alone prints this help


def _add_flags(p: argparse.ArgumentParser, default) -> None:
    def d(value):
        return default if default is argparse.SUPPRESS else value

    p.add_argument("--num", type=int, default=d(1), help="number of trajectories (ids 00000..num-1)")
    p.add_argument("--out", default=d(None), help="output trajectory store (.h5)")
    p.add_argument("--workers", type=int, default=d(1), help="parallel simulation processes")
    p.add_argument("--seed", type=int, default=d(0), help="base seed; trajectory i uses a seed derived from (seed, i)")
    p.add_argument("--shard", default=d(None), help="i/n: generate only the ids with index %% n == i")
    p.add_argument("--config", default=d(None), help="YAML file of scenario parameters (overrides apply on top)")
    p.add_argument("--list", action="store_true", default=d(False), help="list the scenarios and exit")


def run(args: argparse.Namespace) -> int:
    from meshsim.errors import ConfigError
    from meshsim.scenarios import all_scenarios, generate

    late = argparse.ArgumentParser(add_help=False)
    _add_flags(late, None)
    flags, overrides = late.parse_known_args(args.overrides)
    for key, value in vars(flags).items():
        if not hasattr(args, key):
            setattr(args, key, value)
    stray = [o for o in overrides if "=" not in o]
    if stray:
        raise ConfigError(f"unexpected argument {stray[0]!r}: scenario parameters look like key=value")
    if args.list:
        for name, scenario in sorted(all_scenarios().items()):
            print(f"{name:24s} {scenario.description}")
        return 0
    if not args.scene or not args.out:
        raise ConfigError("generate needs SCENE and --out FILE.h5 (meshsim generate --list shows the scenes)")
    summary = generate(args.scene, num=args.num, out=args.out, workers=args.workers, seed=args.seed,
                       shard=args.shard, overrides=overrides, config_path=args.config)
    print(f"{summary['out']}: wrote {summary['written']} trajectories, skipped {summary['skipped']} already there "
          f"({summary['total_in_file']} in file) in {summary['seconds']:.1f} s")
    return 0
