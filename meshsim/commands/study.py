"""`meshsim study CKPT SCENE --sweep NAME=v1,v2,... [--verify K]`: a design study with learned rollouts."""

from __future__ import annotations

from meshsim.commands import add_checkpoint_arg, add_command, add_threads_flag


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "study", run,
        help="design study: learned rollouts across a parameter sweep, solver checks on K points",
        description="Sweeps one scenario parameter (ball_speed, impact_angle, youngs_modulus, drop_height, ...), "
        "rolls the learned model out for each value, and writes study.csv, study.png, study.json and study.h5 "
        "(peak von Mises stress, peak displacement, contact duration). --verify K runs the Warp solver on K of the "
        "points and puts its answers and the learned rollout's RMSE beside the learned ones.",
    )
    add_checkpoint_arg(parser)
    parser.add_argument("scene", help="scenario name, e.g. impact-plate-2d")
    parser.add_argument("--sweep", required=True, help="NAME=v1,v2,... e.g. ball_speed=4,8,12")
    parser.add_argument("--verify", type=int, default=0, help="run the solver on K of the points (default 0)")
    parser.add_argument("--out", default="runs/study", help="output folder (default runs/study)")
    parser.add_argument("--seed", type=int, default=0, help="scene seed shared by every point (default 0)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="scene override applied to every point, repeatable, e.g. --set preset=benchmark")
    parser.add_argument("--batch", type=int, default=8,
                        help="sweep points rolled out together as one batched graph (default 8)")
    parser.add_argument("--tolerance", type=float, default=0.2,
                        help="relative difference from the solver above which a verified answer is flagged (0.2)")
    add_threads_flag(parser)


def run(args) -> int:
    from meshsim.errors import ConfigError
    from meshsim.study import format_report, parse_sweep, run_study

    stray = [o for o in args.overrides if "=" not in o]
    if stray:
        raise ConfigError(f"--set {stray[0]!r}: scene overrides look like KEY=VALUE, e.g. --set preset=benchmark")
    report = run_study(args.checkpoint, args.scene, parse_sweep(args.sweep), verify=args.verify, out=args.out,
                       overrides=tuple(args.overrides), seed=args.seed, threads=args.threads, tolerance=args.tolerance,
                       batch=args.batch)
    print(format_report(report))
    print(f"wrote {args.out}/study.csv, study.png, study.json, study.h5 (meshsim view {args.out}/study.h5)")
    return 0
