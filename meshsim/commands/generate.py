"""`meshsim generate SCENE --num N --out FILE.h5 [--workers K] [--seed S] [--shard i/n] [key=value ...]`."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "generate",
        help="simulate trajectories of a scenario into an HDF5 store (parallel, resumable)",
        description="Simulate trajectories of SCENE into FILE.h5. Re-running the same command resumes: finished "
        "trajectories are skipped. key=value overrides set scenario parameters (preset=benchmark for the "
        "published-benchmark size). Under torchrun each rank writes its own shard file.",
    )
    p.add_argument("scene", metavar="SCENE", help="scenario name, e.g. impact-plate-2d (see --list)", nargs="?")
    p.add_argument("overrides", metavar="key=value", nargs="*", help="scenario parameters, e.g. num_frames=30")
    p.add_argument("--num", type=int, default=1, help="number of trajectories (ids 00000..num-1)")
    p.add_argument("--out", help="output trajectory store (.h5)")
    p.add_argument("--workers", type=int, default=1, help="parallel simulation processes")
    p.add_argument("--seed", type=int, default=0, help="base seed; trajectory i uses a seed derived from (seed, i)")
    p.add_argument("--shard", help="i/n: generate only the ids with index %% n == i")
    p.add_argument("--config", help="YAML file of scenario parameters (overrides still apply on top)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.set_defaults(func=run, subparser=p)


def run(args: argparse.Namespace) -> int:
    from meshsim.errors import ConfigError
    from meshsim.scenarios import all_scenarios, generate

    if args.list:
        for name, scenario in sorted(all_scenarios().items()):
            print(f"{name:24s} {scenario.description}")
        return 0
    if not args.scene or not args.out:
        raise ConfigError("generate needs SCENE and --out FILE.h5 (meshsim generate --list shows the scenes)")
    summary = generate(args.scene, num=args.num, out=args.out, workers=args.workers, seed=args.seed,
                       shard=args.shard, overrides=args.overrides, config_path=args.config)
    print(f"{summary['out']}: wrote {summary['written']} trajectories, skipped {summary['skipped']} already there "
          f"({summary['total_in_file']} in file) in {summary['seconds']:.1f} s")
    return 0
