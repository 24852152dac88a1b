"""`meshsim eval ROLLOUT.h5 [--json OUT.json] [--plot OUT.png]`: HCMT's rollout RMSE (x1e-3) per trajectory."""

from __future__ import annotations

from meshsim.commands import add_command


def register(subparsers) -> None:
    p = add_command(
        subparsers, "eval", run,
        help="position and stress RMSE of a rollout file (steps 1, 50, all; x1e-3 as in HCMT)",
        description="RMSE_k = sqrt(mean over nodes of ||pred - true||^2); p1, p50, p_all = means over steps 1..k.",
    )
    p.add_argument("rollout", help="rollout file written by `meshsim rollout`")
    p.add_argument("--json", default=None, metavar="OUT.json", help="write the full report (and curves) as JSON")
    p.add_argument("--plot", default=None, metavar="OUT.png", help="write a PNG of RMSE over rollout steps")


def run(args) -> int:
    from meshsim.metrics import evaluate_file, format_table

    report = evaluate_file(args.rollout, json_path=args.json, plot_path=args.plot)
    print(format_table(report))
    for label, path in (("json", args.json), ("plot", args.plot)):
        if path:
            print(f"{label}: {path}")
    return 0
