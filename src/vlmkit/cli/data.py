"""``vlmkit data ...``: generate and inspect datasets."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="generate and inspect datasets")
    parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
