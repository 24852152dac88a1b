"""`meshsim train CONFIG.yaml [key=value ...] [--resume] [--run-dir DIR]` (HCMT / MGN; torchrun-aware)."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a learned mesh simulator (HCMT or MGN) from a YAML recipe",
        description="Train HCMT/MGN. Run several processes with: torchrun --nproc_per_node=N -m meshsim train ...",
    )
    p.add_argument("config", help="training recipe (YAML), e.g. data/train_hcmt_impact_plate.yaml")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="overrides, e.g. steps=2000 optim.lr=3e-4")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last.pt")
    p.add_argument("--run-dir", default=None, help="run folder (default: runs/<name>/)")
    p.set_defaults(func=run)


def run(args) -> int:
    from meshsim.train.trainer import train_from_file

    result = train_from_file(args.config, args.overrides, resume=args.resume, run_dir=args.run_dir)
    import os

    if os.environ.get("RANK", "0") == "0":
        best = "" if result.best_metric == float("inf") else f", best validation p_all {result.best_metric:.3f} x1e-3"
        print(f"trained {result.step} steps on {result.world_size} process(es): loss {result.loss:.4g}{best}")
        print(f"run folder: {result.run_dir} (metrics.csv, checkpoints/last.pt, checkpoints/best.pt)", file=sys.stdout)
    return 0
