"""``vlmkit info|classify|embed``: use a model directory from the command line."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    del subparsers
