"""``vlmkit caption | ask | chat``: talk about images with a generative model directory."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from vlmkit.cli import add_device_option, resolve_device
from vlmkit.errors import InputError

if TYPE_CHECKING:
    from vlmkit.models import Decoder, VisionLanguageModel
    from vlmkit.models.generation import GenerationConfig


def _generation_options(parser: argparse.ArgumentParser, max_new_tokens: int) -> None:
    parser.add_argument("--model", required=True, help="model directory or hub id")
    parser.add_argument("--max-new-tokens", type=int, default=max_new_tokens)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 (default) is greedy decoding")
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--repetition-penalty", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=None, help="seed for sampling")
    add_device_option(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    caption = subparsers.add_parser("caption", help="caption images with a generative VLM")
    caption.add_argument("images", nargs="+", help="image files")
    caption.add_argument("--prompt", default=None, help="user turn after the image (default: the training prompt)")
    caption.add_argument("--batch-size", type=int, default=8)
    _generation_options(caption, 32)
    caption.set_defaults(handler=run_caption)

    ask = subparsers.add_parser("ask", help="ask one question about an image")
    ask.add_argument("image", help="image file")
    ask.add_argument("question")
    _generation_options(ask, 64)
    ask.set_defaults(handler=run_ask)

    chat = subparsers.add_parser("chat", help="interactive chat about an image (/reset, /quit)")
    chat.add_argument("image", help="image file")
    chat.add_argument("--system", default=None, help="system prompt")
    _generation_options(chat, 256)
    chat.set_defaults(handler=run_chat)


def _load(args: argparse.Namespace) -> tuple[VisionLanguageModel | Decoder, GenerationConfig]:
    from vlmkit.checkpoints import from_pretrained
    from vlmkit.models import Decoder, VisionLanguageModel
    from vlmkit.models.generation import GenerationConfig

    config = GenerationConfig(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
    )
    model = from_pretrained(args.model, device=resolve_device(args.device))
    if not isinstance(model, (VisionLanguageModel, Decoder)):
        raise InputError(f"{args.model}: a {type(model).__name__} cannot generate text; give a VLM or decoder")
    return model, config


def run_caption(args: argparse.Namespace) -> int:
    from vlmkit.processing.chat import CAPTION_PROMPT
    from vlmkit.tasks.caption import caption

    model, config = _load(args)
    texts = caption(model, args.images, prompt=args.prompt or CAPTION_PROMPT, batch_size=args.batch_size, config=config)
    for image, text in zip(args.images, texts, strict=True):
        print(f"{image}: {text}")
    return 0


def run_ask(args: argparse.Namespace) -> int:
    from vlmkit.tasks.chat import ask

    model, config = _load(args)
    print(ask(model, args.image, args.question, config))
    return 0


def run_chat(args: argparse.Namespace) -> int:
    from vlmkit.tasks.chat import Chat

    model, config = _load(args)
    chat = Chat(model, args.image, system=args.system, config=config)
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line or line.strip() == "/quit":
            return 0
        text = line.strip()
        if not text:
            continue
        if text == "/reset":
            chat.reset()
            print("(conversation reset)")
            continue
        for piece in chat.send(text, stream=True):
            print(piece, end="", flush=True)
        print()
