"""Subcommands of the `meshsim` CLI, one module per command group, discovered by `meshsim.cli`.

Contract for each module: a `register(subparsers)` function that adds its parser(s) with
`set_defaults(func=handler)`; handlers import the library lazily (so `meshsim --help` stays fast), call it,
print results and return an exit code. Group parsers without a subcommand set `subparser=<the group parser>`
so that `meshsim GROUP` prints the group's help.
"""
