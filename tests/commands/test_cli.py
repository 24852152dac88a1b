"""The `meshsim` command: version, help, subcommand registry, error handling and exit codes."""

import argparse

import pytest
from procs import meshsim_cmd
from procs import run as run_bounded

from meshsim import __version__, cli
from meshsim.errors import MeshError, MeshsimError


def run(*args):
    return run_bounded(meshsim_cmd(*args), timeout=120)


def test_version_and_help():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"meshsim {__version__}"
    helped = run("--help")
    assert helped.returncode == 0 and "usage: meshsim" in helped.stdout


def test_no_command_prints_help_and_fails():
    out = run()
    assert out.returncode == 2 and "usage: meshsim" in out.stderr


def test_unknown_command_is_an_argparse_error():
    out = run("no-such-command")
    assert out.returncode == 2 and "invalid choice" in out.stderr


def test_every_command_module_registers(monkeypatch):
    parser = cli.build_parser()
    subactions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert subactions, "no subcommands registered"


def _parser_with(handler):
    parser = argparse.ArgumentParser(prog="meshsim")
    sub = parser.add_subparsers()
    sub.add_parser("boom").set_defaults(func=handler)
    return parser


def test_meshsim_error_becomes_one_line_and_exit_2(monkeypatch, capsys):
    def handler(args):
        raise MeshError("mesh plate.msh has 3 inverted\n elements: fix their orientation")

    monkeypatch.setattr(cli, "build_parser", lambda: _parser_with(handler))
    assert cli.main(["boom"]) == 2
    err = capsys.readouterr().err
    assert err == "meshsim: error: mesh plate.msh has 3 inverted elements: fix their orientation\n"


def test_unexpected_errors_keep_their_traceback(monkeypatch):
    def handler(args):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(cli, "build_parser", lambda: _parser_with(handler))
    with pytest.raises(ZeroDivisionError):
        cli.main(["boom"])


def test_error_kinds_share_the_base():
    from meshsim import errors

    kinds = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, MeshsimError)]
    assert len(kinds) >= 8 and all(k.exit_code == 2 for k in kinds)
