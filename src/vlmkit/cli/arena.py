"""``vlmkit arena``: anonymous side-by-side battles between models, votes, and ratings from the votes.

``vlmkit arena --models A,B,C`` serves the arena's page; ``vlmkit arena ratings VOTES`` fits
Bradley-Terry ratings with bootstrap intervals (and online Elo) to its votes or to FastChat battles;
``vlmkit arena leaderboard VOTES --format md`` prints them as a table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vlmkit.cli import HelpFormatter
from vlmkit.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    arena = subparsers.add_parser(
        "arena",
        help="two anonymous models answer side by side, people vote; ratings from the votes",
        description="Serve the arena (--models A,B,C), or rate its votes (ratings, leaderboard).",
        formatter_class=HelpFormatter,
    )
    arena.set_defaults(handler=run_arena)
    commands = arena.add_subparsers(dest="arena_command", metavar="COMMAND")
    ratings = commands.add_parser(
        "ratings",
        help="Bradley-Terry ratings (FastChat's MLE) with bootstrap 95%% intervals, and online Elo",
        formatter_class=HelpFormatter,
    )
    _add_votes_options(ratings)
    ratings.add_argument("--json", action="store_true", help="print one JSON object per model (a JSON array)")
    ratings.set_defaults(handler=run_ratings)
    leaderboard = commands.add_parser(
        "leaderboard", help="the ratings as a table (text or Markdown)", formatter_class=HelpFormatter
    )
    _add_votes_options(leaderboard)
    leaderboard.add_argument("--format", choices=["text", "md"], default="text", help="table format")
    leaderboard.set_defaults(handler=run_leaderboard)


def _add_votes_options(parser: argparse.ArgumentParser) -> None:
    from vlmkit.arena.ratings import ROUNDS

    parser.add_argument(
        "votes", type=Path, help="the arena's votes database, or a JSONL / JSON array of FastChat battles"
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="bootstrap resamplings for the intervals")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")


def _ratings(args: argparse.Namespace) -> list:
    from vlmkit.arena.battles import read_battles
    from vlmkit.arena.ratings import rate

    if args.rounds < 1:
        raise ConfigError(f"--rounds: expected at least 1, got {args.rounds}")
    return rate(read_battles(args.votes), rounds=args.rounds, seed=args.seed)


def run_ratings(args: argparse.Namespace) -> int:
    from vlmkit.arena.tables import text_table

    rows = _ratings(args)
    print(json.dumps([row.to_dict() for row in rows], indent=1) if args.json else text_table(rows))
    return 0


def run_leaderboard(args: argparse.Namespace) -> int:
    from vlmkit.arena.tables import markdown_table, text_table

    rows = _ratings(args)
    print(markdown_table(rows) if args.format == "md" else text_table(rows))
    return 0


def run_arena(args: argparse.Namespace) -> int:
    raise ConfigError("arena: give a command (ratings, leaderboard)")
