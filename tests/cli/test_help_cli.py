"""Every flag of the model, eval, generation and data commands has a help line that shows its default."""

from __future__ import annotations

import argparse

import pytest

from vlmkit.cli import HelpFormatter, build_parser, main

COMMANDS = ["info", "classify", "embed", "eval", "caption", "ask", "chat", "data"]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def _commands() -> list:
    top = _subparsers(build_parser())
    chosen = [(name, top[name]) for name in COMMANDS]
    chosen += [(f"data {name}", parser) for name, parser in _subparsers(top["data"]).items()]
    return [pytest.param(name, parser, id=name) for name, parser in chosen]


@pytest.mark.parametrize(("name", "parser"), _commands())
def test_every_flag_has_help_with_its_default(name, parser):
    assert parser.formatter_class is HelpFormatter, name
    text = parser.format_help()
    formatter = HelpFormatter(name)
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        assert action.help, f"{name} {action.dest}: no help line"
        if action.default is None or action.default is False:
            continue
        help_line = formatter._get_help_string(action) % {"default": action.default}
        assert "default" in help_line.lower(), f"{name} {action.dest}: the help does not show the default"
    assert "(default: None)" not in text and "(default: False)" not in text


def test_help_shows_defaults_as_a_user_reads_them(capsys):
    with pytest.raises(SystemExit):
        main(["classify", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "labels shown per image (default: 3)" in out and "auto (the default" in out
