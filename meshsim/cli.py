"""The `meshsim` command.

Each module in `meshsim.commands` defines `register(subparsers)` which adds its subcommand(s) and sets
`func` on the parsed namespace. Handlers parse and call library functions; all logic lives in the library.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from meshsim import __version__
from meshsim.errors import MeshsimError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshsim",
        description="Learned physics simulation of flexible bodies (Warp FEM/MPM, HCMT, MeshGraphNets, NCLaw).",
    )
    parser.add_argument("--version", action="version", version=f"meshsim {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    from meshsim import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"meshsim.commands.{info.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        # `meshsim` or `meshsim data` without a subcommand: show the relevant help.
        (getattr(args, "subparser", None) or parser).print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except MeshsimError as err:
        print(f"meshsim: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("meshsim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
