"""``vlmkit caption | ask | chat``: talk about images with a generative model directory."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from typing import TYPE_CHECKING

from vlmkit.cli import VLM, HelpFormatter, add_device_option, load_model

if TYPE_CHECKING:
    from PIL import Image

    from vlmkit.models import VisionLanguageModel
    from vlmkit.models.generation import GenerationConfig
    from vlmkit.tasks.chat import Chat

CHAT_COMMANDS = {
    "/image PATH": "show the image at PATH with the next turn",
    "/help": "list these commands",
    "/reset": "forget the conversation (keep the chat's first image)",
    "/quit": "end the chat (or Ctrl-D)",
}


def _generation_options(parser: argparse.ArgumentParser, max_new_tokens: int) -> None:
    parser.add_argument(
        "--model", required=True, help="vision-language model directory or hub id (a vlmkit VLM run or LLaVA)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=max_new_tokens, help="most tokens to generate")
    parser.add_argument("--temperature", type=float, default=0.0, help="sampling temperature; 0 (default) is greedy")
    parser.add_argument("--top-k", type=int, default=0, help="sample from the k likeliest tokens only (0: all)")
    parser.add_argument(
        "--top-p",
        type=float,
        default=1.0,
        help="sample from the likeliest tokens whose probabilities sum to p (1: all)",
    )
    parser.add_argument("--repetition-penalty", type=float, default=1.0, help="above 1 discourages repeats")
    parser.add_argument("--seed", type=int, default=None, help="seed for sampling (default: none, not reproducible)")
    add_device_option(parser, dtype=True)


def register(subparsers: argparse._SubParsersAction) -> None:
    caption = subparsers.add_parser(
        "caption", help="caption images with a generative VLM", formatter_class=HelpFormatter
    )
    caption.add_argument("images", nargs="+", help="image files, or video clips (--frames of them, each with its time)")
    caption.add_argument("--prompt", default=None, help="user turn after the image (default: the training prompt)")
    caption.add_argument("--batch-size", type=int, default=8, help="images per model call")
    caption.add_argument("--frames", type=int, default=8, help="frames sampled uniformly from a video")
    _generation_options(caption, 32)
    caption.set_defaults(handler=run_caption)

    ask = subparsers.add_parser(
        "ask", help="ask one question about an image or a document page", formatter_class=HelpFormatter
    )
    ask.add_argument(
        "image",
        help="image file, a PDF (its page's text goes into the prompt, as with --page-text), or a video clip "
        "(--frames of them, each with its time)",
    )
    ask.add_argument("question", help="the question, e.g. 'what colour is the star?'")
    ask.add_argument(
        "--page-text",
        action="store_true",
        help="OCR-augmented: put the page's text (OCR, or a PDF's text layer) before the question; for models "
        "trained with `instruct --page-text`",
    )
    ask.add_argument("--page", type=int, default=1, help="which page of a PDF or multi-page TIFF")
    ask.add_argument("--frames", type=int, default=8, help="frames sampled uniformly from a video")
    _generation_options(ask, 64)
    ask.set_defaults(handler=run_ask)

    chat = subparsers.add_parser(
        "chat", help="interactive chat about images (/image PATH, /help, /reset, /quit)", formatter_class=HelpFormatter
    )
    chat.add_argument(
        "image", nargs="?", default=None, help="image file shown in the first turn (any turn can bring one: /image)"
    )
    chat.add_argument("--system", default=None, help="system prompt (default: none)")
    _generation_options(chat, 256)
    chat.set_defaults(handler=run_chat)


def _load(args: argparse.Namespace) -> tuple[VisionLanguageModel, GenerationConfig]:
    from vlmkit.models.generation import GenerationConfig

    config = GenerationConfig(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
    )
    return load_model(args.model, args.device, args.command, [VLM], args.dtype), config


def run_caption(args: argparse.Namespace) -> int:
    from vlmkit.processing.chat import CAPTION_PROMPT
    from vlmkit.processing.video import FrameSampling, is_video
    from vlmkit.tasks.caption import caption
    from vlmkit.tasks.video import VIDEO_CAPTION_PROMPT, caption_video

    model, config = _load(args)
    images = [path for path in args.images if not is_video(path)]
    prompt = args.prompt or CAPTION_PROMPT
    texts = iter(caption(model, images, prompt=prompt, batch_size=args.batch_size, config=config) if images else [])
    for path in args.images:
        if is_video(path):
            sampling = FrameSampling(frames=args.frames)
            text = caption_video(model, path, args.prompt or VIDEO_CAPTION_PROMPT, sampling, config=config)
            print(f"{path}: {text}")
        else:
            print(f"{path}: {next(texts)}")
    return 0


def run_ask(args: argparse.Namespace) -> int:
    from vlmkit.processing.video import FrameSampling, is_video
    from vlmkit.tasks.chat import ask
    from vlmkit.tasks.documents import ask_document
    from vlmkit.tasks.video import ask_video

    model, config = _load(args)
    if is_video(args.image):
        print(ask_video(model, args.image, args.question, FrameSampling(frames=args.frames), config=config))
    elif args.page_text or args.page != 1 or args.image.lower().endswith(".pdf"):
        print(ask_document(model, args.image, args.question, page=args.page, config=config))
    else:
        print(ask(model, args.image, args.question, config))
    return 0


def chat_help() -> str:
    return "\n".join(f"  {name:<11} {what}" for name, what in CHAT_COMMANDS.items())


def run_chat(args: argparse.Namespace) -> int:
    from vlmkit.tasks.chat import Chat

    model, config = _load(args)
    chat = Chat(model, args.image, system=args.system, config=config)
    interactive = sys.stdin.isatty()
    if interactive:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (line editing and history for input())
        about = f"about {args.image}" if args.image else "(no image yet: /image PATH shows one)"
        print(f"chatting {about}; /help lists the commands, Ctrl-D ends")
    try:
        return _chat_loop(chat, interactive)
    except KeyboardInterrupt:
        print()  # the "interrupted" line starts on a fresh line, not after the prompt
        raise


def _chat_loop(chat: Chat, interactive: bool) -> int:
    image: Image.Image | None = None  # shown with the next turn (/image)
    while True:
        try:
            line = input("> ") if interactive else sys.stdin.readline()
            if not interactive and not line:
                raise EOFError
        except EOFError:  # end of input (Ctrl-D): end on a fresh line, not after the prompt
            if interactive:
                print()
            return 0
        text = line.strip()
        if not text:
            continue
        if text == "/quit":
            return 0
        if text == "/help":
            print(chat_help())
            continue
        if text == "/reset":
            chat.reset()
            print("(conversation reset)")
            continue
        if text == "/image" or text.startswith("/image "):
            image = _image_command(text.removeprefix("/image").strip()) or image
            continue
        if re.fullmatch(r"/[a-z]+", text):
            print(f"unknown command {text}; /help lists the commands")
            continue
        for piece in chat.send(text, stream=True, image=image):
            print(piece, end="", flush=True)
        print()
        image = None


def _image_command(path: str) -> Image.Image | None:
    """The image ``/image PATH`` names, read now so a bad path is told at once and the chat goes on; None then."""
    from vlmkit.errors import VlmkitError
    from vlmkit.processing.images import load_image

    if not path:
        print("usage: /image PATH (the image is shown with the next turn)")
        return None
    try:
        image = load_image(path)
    except VlmkitError as error:
        print(f"{error}; the chat goes on without it")
        return None
    print(f"({path} is shown with the next turn)")
    return image
