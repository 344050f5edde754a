"""``vlmkit <command>``: the command line, one module per command group.

Each module named in ``COMMAND_MODULES`` exposes ``register(subparsers)``, which adds its commands
and sets ``handler`` on each; every command is a thin layer over the Python API. A ``VlmkitError``
becomes one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from vlmkit import __version__
from vlmkit.errors import VlmkitError

COMMAND_MODULES = ["demo", "train", "evaluate", "models", "data", "generate", "serve", "search"]


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default="auto",
        help="torch device: auto (CUDA when there is one), cpu, cuda, cuda:1; under torchrun, cuda is each "
        "process's local GPU",
    )


def resolve_device(name: str) -> str:
    """``--device``'s value as a torch device name (the rules of ``vlmkit.devices``)."""
    from vlmkit.devices import resolve_device as resolve

    return str(resolve(name))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vlmkit", description="Vision-language models end to end.")
    parser.add_argument("--version", action="version", version=f"vlmkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"vlmkit.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except VlmkitError as error:
        print(f"vlmkit {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vlmkit {args.command}: interrupted", file=sys.stderr)
        return 130
