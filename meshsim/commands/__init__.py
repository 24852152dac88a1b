"""Subcommands of the `meshsim` CLI, one module per command group, discovered by `meshsim.cli`.

Contract for each module: a `register(subparsers)` function that adds its parser(s) with
`set_defaults(func=handler)`; handlers import the library lazily (so `meshsim --help` stays fast), call it,
print results and return an exit code. Group parsers without a subcommand set `subparser=<the group parser>`
so that `meshsim GROUP` prints the group's help.
"""


def command_group(subparsers, name: str, help: str):
    """The parser of `meshsim NAME SUBCOMMAND ...` (printing its help when no subcommand is given); returns the
    subparsers to add its subcommands to."""
    group = subparsers.add_parser(name, help=help)
    group.set_defaults(func=None, subparser=group)
    return group.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND")


def add_command(subparsers, name: str, func, help: str, description: str | None = None):
    """One (sub)command's parser, run by `func(args) -> exit code`."""
    parser = subparsers.add_parser(name, help=help, description=description)
    parser.set_defaults(func=func)
    return parser


def add_json_flag(parser, what: str = "the result") -> None:
    """`--json`: print `what` as one JSON object instead of text (the same flag on every command that has it)."""
    parser.add_argument("--json", action="store_true", help=f"print {what} as one JSON object instead of text")


# Arguments that several commands take, declared once so that they read the same everywhere.
def add_file_arg(parser) -> None:
    """FILE: a trajectory or rollout store (data inspect, export, render, view)."""
    parser.add_argument("file", help="trajectory or rollout file (.h5)")


def add_checkpoint_arg(parser) -> None:
    """CHECKPOINT: a trained model, as a file or by the name of a shipped one (rollout, study)."""
    parser.add_argument("checkpoint", help="checkpoint written by `meshsim train` (e.g. runs/x/checkpoints/best.pt) "
                        "or the name of a shipped model (`meshsim models`)")


def add_threads_flag(parser, default: int | None = 0, help: str | None = None) -> None:
    """--threads N: torch's CPU threads for this command (meshsim.threads picks them when 0)."""
    parser.add_argument("--threads", type=int, default=default,
                        help=help or "torch CPU threads (default 0: automatic, meshsim.threads)")


def add_force_flag(parser, what: str = "an existing output") -> None:
    """--force: replace outputs that exist (commands refuse to overwrite without it)."""
    parser.add_argument("--force", action="store_true", help=f"replace {what}")
