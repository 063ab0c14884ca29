"""Every subcommand of `fnet` answers --help, and `fnet` alone lists them."""

from __future__ import annotations

import pytest

from fnet.cli.main import SUBCOMMAND_MODULES, build_parser, main

SUBCOMMANDS = [m.rsplit(".", 1)[1] for m in SUBCOMMAND_MODULES]


def test_every_listed_subcommand_exists():
    parser = build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    assert sorted(choices) == sorted(SUBCOMMANDS)


@pytest.mark.parametrize("command", SUBCOMMANDS + ["tokenizer train"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(command.split() + ["--help"])
    assert exit_info.value.code == 0
    assert "usage: fnet" in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    for command in SUBCOMMANDS:
        assert command in out
