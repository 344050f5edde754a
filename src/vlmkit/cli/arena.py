"""``vlmkit arena``: anonymous side-by-side battles between models, votes, and ratings from the votes.

``vlmkit arena --models A,B,C`` serves the arena's page; ``vlmkit arena ratings VOTES`` fits
Bradley-Terry ratings with bootstrap intervals (and online Elo) to its votes or to FastChat battles;
``vlmkit arena leaderboard VOTES --format md`` prints them as a table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vlmkit.cli import VLM, HelpFormatter, add_device_option, load_model, require, resolve_device
from vlmkit.errors import ConfigError

if TYPE_CHECKING:
    from fastapi import FastAPI


def register(subparsers: argparse._SubParsersAction) -> None:
    arena = subparsers.add_parser(
        "arena",
        help="two anonymous models answer side by side, people vote; ratings from the votes",
        description="Serve the arena (--models A,B,C), or rate its votes (ratings, leaderboard).",
        formatter_class=HelpFormatter,
    )
    arena.add_argument("--models", help="comma-separated model directories or hub ids (at least two VLMs)")
    arena.add_argument("--votes", type=Path, default=Path("votes.db"), help="the votes database (created if new)")
    arena.add_argument("--host", default="127.0.0.1", help="address to bind; 127.0.0.1 is this machine only")
    arena.add_argument("--port", type=int, default=8000, help="port to listen on")
    arena.add_argument("--max-tokens", type=int, default=256, help="most tokens per answer")
    arena.add_argument("--timeout-s", type=float, default=120.0, help="per-battle time limit")
    arena.add_argument("--max-body-mb", type=float, default=20.0, help="largest request body (413 past it)")
    arena.add_argument("--max-image-pixels", type=int, default=16_000_000, help="largest width*height of an image")
    add_device_option(arena)
    arena.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
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


def build_arena(args: argparse.Namespace) -> FastAPI:
    """Load the models (each under its directory's name, as ``vlmkit serve`` names them), open the votes
    and build the application."""
    require("fastapi", "serve")
    from vlmkit.arena.app import create_arena_app
    from vlmkit.arena.state import Arena
    from vlmkit.arena.votes import VoteStore
    from vlmkit.cli.serve import model_id
    from vlmkit.serving import ServerLimits

    sources = [source.strip() for source in (args.models or "").split(",") if source.strip()]
    if len(sources) < 2:
        raise ConfigError("give --models A,B[,C...]: at least two vision-language models to compare")
    names = [model_id(source, None) for source in sources]
    if len(set(names)) < len(names):
        twice = sorted({name for name in names if names.count(name) > 1})
        raise ConfigError(f"--models names {', '.join(twice)} more than once; each model needs its own name")
    limits = ServerLimits(
        max_tokens_cap=args.max_tokens,
        timeout_s=args.timeout_s,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_image_pixels=args.max_image_pixels,
        max_images=1,
    )
    device = resolve_device(args.device)
    models = {name: load_model(source, device, "arena", [VLM]) for name, source in zip(names, sources, strict=True)}
    return create_arena_app(Arena(models, VoteStore.open(args.votes), limits))


def run_arena(args: argparse.Namespace) -> int:
    require("uvicorn", "serve")
    import uvicorn

    from vlmkit.cli.serve import is_loopback
    from vlmkit.serving.connections import header_deadline_protocol

    app = build_arena(args)
    if not is_loopback(args.host):
        print(f"vlmkit arena: warning: binding {args.host}; anyone who can reach it can vote", file=sys.stderr)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=args.timeout_s,
        http=header_deadline_protocol(10.0),
    )
    return 0
