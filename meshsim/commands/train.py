"""`meshsim train CONFIG.yaml [key=value ...] [--resume] [--run-dir DIR]` (HCMT / MGN; torchrun-aware)."""

from __future__ import annotations

import argparse
import os

from meshsim.commands import add_command, add_threads_flag


def register(subparsers) -> None:
    p = add_command(
        subparsers, "train", run,
        help="train a learned mesh simulator (HCMT or MGN) from a YAML recipe",
        description="Train HCMT/MGN. Several processes: torchrun --nproc_per_node=N -m meshsim train CONFIG.yaml",
    )
    _add_flags(p)
    p.add_argument("config", help="training recipe (YAML), e.g. data/train_hcmt_impact_plate.yaml")
    # REMAINDER so that flags may follow overrides: `meshsim train c.yaml steps=10 --resume`.
    p.add_argument("overrides", nargs=argparse.REMAINDER, metavar="key=value",
                   help="overrides, e.g. steps=2000 optim.lr=3e-4 model.kind=mgn")


def _add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last.pt")
    p.add_argument("--run-dir", default=None, help="run folder (default: runs/<name>/)")
    add_threads_flag(p, default=None,
                     help="torch CPU threads per process (same as threads=N; default: the config's, 0 = automatic)")


def run(args) -> int:
    from meshsim.errors import ConfigError
    from meshsim.train.trainer import train_from_file

    late = argparse.ArgumentParser(add_help=False)
    _add_flags(late)
    flags, overrides = late.parse_known_args(args.overrides)
    stray = [o for o in overrides if "=" not in o]
    if stray:
        raise ConfigError(f"unexpected argument {stray[0]!r}: overrides look like key=value, flags are --resume, "
                          "--run-dir DIR and --threads N")
    threads = flags.threads if flags.threads is not None else args.threads
    if threads is not None:
        overrides = [*overrides, f"threads={threads}"]
    result = train_from_file(args.config, overrides, resume=args.resume or flags.resume,
                             run_dir=flags.run_dir or args.run_dir)
    if os.environ.get("RANK", "0") == "0":
        best = "" if result.best_metric == float("inf") else f", best validation p_all {result.best_metric:.3f} x1e-3"
        print(f"trained {result.step} steps on {result.world_size} process(es): loss {result.loss:.4g}{best}")
        print(f"run folder: {result.run_dir} (config.resolved.yaml, metrics.csv, checkpoints/)")
    return 0
