"""`meshsim demo [--quick]`: the whole product end to end (what `make demo` runs); `meshsim demo nclaw`."""

from __future__ import annotations

from meshsim.commands import add_command, add_threads_flag


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "demo", run,
        help="run the main job end to end: FEM data, HCMT + MGN training, rollouts, table, ParaView, video",
        description="Simulates impact-plate-2d trajectories with the Warp FEM, trains HCMT and MGN for the same "
        "wall-clock budget, rolls both out on held-out trajectories, prints RMSE and speed-up over the solver, "
        "exports ParaView files and renders a GIF. `meshsim demo nclaw` fits a jelly law in the differentiable "
        "MPM and evaluates it on a new shape.",
    )
    parser.add_argument("which", nargs="?", choices=["hcmt", "nclaw"], default="hcmt",
                        help="hcmt (default): learned mesh simulators; nclaw: neural constitutive law")
    parser.add_argument("--quick", action="store_true", help="small sizes and budgets (about 3 minutes)")
    parser.add_argument("--out", default=None, help="output folder (default runs/demo or runs/demo-nclaw)")
    parser.add_argument("--no-render", action="store_true", help="skip the video (needs headless chromium)")
    parser.add_argument("--seed", type=int, default=0)
    add_threads_flag(parser, help="torch CPU threads for training and rollouts (default 0: automatic, meshsim.threads)")


def run(args) -> int:
    if args.which == "nclaw":
        from meshsim.demo_nclaw import format_summary, run_nclaw_demo

        summary = run_nclaw_demo(args.out or "runs/demo-nclaw", quick=args.quick, seed=args.seed)
    else:
        from meshsim.demo import format_summary, run_demo

        summary = run_demo(args.out or "runs/demo", quick=args.quick, render=not args.no_render, seed=args.seed,
                           threads=args.threads)
    print(format_summary(summary))
    return 0
