"""``vlmkit serve``: the HTTP server (OpenAI-compatible API, search, web page) over model directories."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmkit.cli import add_device_option, require, resolve_device
from vlmkit.errors import ConfigError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from vlmkit.models import DualEncoder
    from vlmkit.search.store import SearchStore

API_KEY_ENV = "VLMKIT_API_KEY"


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="serve models over HTTP: OpenAI-compatible chat and embeddings, classify, search, a web page",
        description="Serve a dual encoder (--model) and/or a generative model (--vlm) on HTTP. Binds "
        "127.0.0.1 unless told otherwise; set an API key before binding any other address.",
    )
    serve.add_argument("--model", help="dual encoder directory or hub id (embeddings, classify, search queries)")
    serve.add_argument("--vlm", help="generative model directory or hub id (chat completions)")
    serve.add_argument("--index", type=Path, help="search index directory (built by the search indexer)")
    serve.add_argument(
        "--images-root",
        type=Path,
        default=None,
        help="folder the index's relative paths start from; hits' paths are shown relative to it (default: cwd)",
    )
    serve.add_argument(
        "--absolute-paths",
        action="store_true",
        help="search hits give files' absolute paths on this machine (default: relative to the index root)",
    )
    serve.add_argument(
        "--read",
        nargs="?",
        const="ppocr",
        default=None,
        metavar="ENGINE",
        help="serve /v1/read, the text of page images, with this OCR engine (ppocr when none is named; tesseract)",
    )
    serve.add_argument(
        "--mask-tokenizer",
        help="the mask tokenizer --vlm was trained with (`vlmkit train mask-vae`): serves /v1/segment",
    )
    serve.add_argument(
        "--t2i", help="a text-to-image model (`vlmkit train t2i`): serves /v1/images/generations (OpenAI's shape)"
    )
    serve.add_argument(
        "--max-video-seconds", type=float, default=300.0, help="longest clip a chat may send (400 past it; 300)"
    )
    serve.add_argument(
        "--video-frames", type=int, default=8, help="frames sampled from a clip in a chat (at most --max-images; 8)"
    )
    serve.add_argument("--model-name", help="id clients use for --model (default: its directory name)")
    serve.add_argument("--vlm-name", help="id clients use for --vlm (default: its directory name)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--api-key", default=None, help=f"require this bearer key on /v1 and /metrics (or ${API_KEY_ENV})"
    )
    serve.add_argument("--allow-local-folder", type=Path, help="let file:// image URLs read files inside this folder")
    serve.add_argument("--max-batch", type=int, default=16, help="most inputs per model call")
    serve.add_argument("--batch-wait-ms", type=float, default=5.0, help="wait for more requests to fill a batch")
    serve.add_argument("--queue", type=int, default=64, help="most waiting requests per model; beyond: 503")
    serve.add_argument("--max-tokens-cap", type=int, default=512, help="largest max_tokens a request may ask for")
    serve.add_argument("--timeout-s", type=float, default=60.0, help="per-request time limit (504 past it)")
    serve.add_argument("--max-body-mb", type=float, default=20.0, help="largest request body (413 past it)")
    serve.add_argument("--max-image-pixels", type=int, default=16_000_000, help="largest width*height of an image")
    serve.add_argument(
        "--max-request-pixels",
        type=int,
        default=64_000_000,
        help="most width*height of a request's images together, from their headers (400 past it; default 64000000)",
    )
    serve.add_argument(
        "--max-images", type=int, default=32, help="most images in one request (400 past it; default 32)"
    )
    serve.add_argument(
        "--max-text-chars",
        type=int,
        default=1_000_000,
        help="most characters of text in one request, checked before tokenizing (400 past it; default 1000000)",
    )
    serve.add_argument(
        "--body-timeout-s",
        type=float,
        default=30.0,
        help="seconds a client has to send a request's body once its headers are in (408 past it; default 30)",
    )
    serve.add_argument(
        "--header-timeout-s",
        type=float,
        default=10.0,
        help="seconds a connection has to send a request's headers (idle keep-alive counts), or is closed; default 10",
    )
    serve.add_argument(
        "--max-buffered-mb",
        type=float,
        default=128.0,
        help="most request-body megabytes held at once by all requests together (503 past it; default 128)",
    )
    serve.add_argument(
        "--limit-concurrency",
        type=int,
        default=128,
        help="most open connections and requests at once; uvicorn answers 503 past it (default 128)",
    )
    serve.add_argument(
        "--timeout-keep-alive", type=int, default=5, help="seconds an idle keep-alive connection stays open (default 5)"
    )
    add_device_option(serve)
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.set_defaults(handler=run_serve)


def model_id(source: str, name: str | None) -> str:
    """The id clients send: ``name`` if given, else a local directory's name (a training run's ``model/``
    takes its run directory's name, so two runs never share one), else the hub id as written."""
    if name:
        return name
    path = Path(source)
    if not path.is_dir():
        return source
    path = path.resolve()
    return path.parent.name if path.name == "model" and (path.parent / "run.json").exists() else path.name


def _same_model(a: str, b: str) -> bool:
    if a == b:
        return True
    return Path(a).is_dir() and Path(b).is_dir() and Path(a).resolve() == Path(b).resolve()


def _load(source: str, kinds: tuple[type, ...], flag: str, device: str) -> Any:
    from vlmkit.checkpoints import from_pretrained

    model = from_pretrained(source, device=device)
    if not isinstance(model, kinds):
        expected = " or ".join(kind.__name__ for kind in kinds)
        raise ConfigError(f"{flag} {source}: expected a {expected}, got a {type(model).__name__}")
    return model


def _encoder_kinds() -> tuple[type, ...]:
    """What serves embeddings, classification and search: the models the embedding tasks take."""
    import typing

    from vlmkit.tasks.embed import EmbeddingModel

    return typing.get_args(EmbeddingModel)


def _index_encoder(store: SearchStore, encoder: DualEncoder | None, names: tuple[str, ...], device: str) -> DualEncoder:
    """The model the index's manifest names: the served encoder when ``names`` (its source or id) match it,
    else loaded here."""
    from vlmkit.errors import VlmkitError

    named = store.model_id
    if encoder is not None and any(_same_model(named, name) for name in names):
        chosen = encoder
    else:
        try:
            chosen = _load(named, _encoder_kinds(), "index model", device)
        except VlmkitError as error:
            raise ConfigError(
                f"--index {store.directory} was built with model {named!r}, which cannot be loaded ({error}); "
                "serve that model with --model"
            ) from None
    if chosen.config.embed_dim != store.dim:
        raise ConfigError(
            f"--index {store.directory} holds {store.dim}-d vectors but model {named!r} makes "
            f"{chosen.config.embed_dim}-d ones"
        )
    return chosen


def _mask_tokenizer(source: str, device: str) -> Any:
    """The mask tokenizer ``/v1/segment`` decodes masks with; it serves the --vlm it was trained with."""
    from vlmkit.checkpoints import from_pretrained

    codec = from_pretrained(source, device=device)
    if not (hasattr(codec, "encode") and hasattr(codec, "decode")):
        raise ConfigError(f"--mask-tokenizer {source}: expected a mask tokenizer (`vlmkit train mask-vae`)")
    return codec


def limits_from(args: argparse.Namespace) -> Any:
    from vlmkit.serving import ServerLimits

    return ServerLimits(
        max_batch=args.max_batch,
        batch_wait_ms=args.batch_wait_ms,
        queue=args.queue,
        max_tokens_cap=args.max_tokens_cap,
        timeout_s=args.timeout_s,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_image_pixels=args.max_image_pixels,
        api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
        allow_local_folder=args.allow_local_folder,
        max_text_chars=args.max_text_chars,
        max_images=args.max_images,
        max_request_pixels=args.max_request_pixels,
        body_timeout_s=args.body_timeout_s,
        max_buffered_bytes=int(args.max_buffered_mb * 1024 * 1024),
        max_video_seconds=args.max_video_seconds,
        video_frames=args.video_frames,
    )


def uvicorn_options(args: argparse.Namespace) -> dict[str, Any]:
    """The connection limits uvicorn enforces itself, plus the header deadline it lacks."""
    from vlmkit.serving.connections import header_deadline_protocol

    if args.limit_concurrency < 1 or args.timeout_keep_alive < 1 or args.header_timeout_s <= 0:
        raise ConfigError("serve: --limit-concurrency and --timeout-keep-alive must be >= 1, --header-timeout-s > 0")
    return {
        "limit_concurrency": args.limit_concurrency,
        "timeout_keep_alive": args.timeout_keep_alive,
        "http": header_deadline_protocol(args.header_timeout_s),
    }


def build_app(args: argparse.Namespace) -> FastAPI:
    """Load the models and index the arguments name and build the application."""
    require("fastapi", "serve")
    if args.index:
        require("faiss", "search")
    from vlmkit.models import Decoder, Qwen2VLModel, VisionLanguageModel
    from vlmkit.serving import ServedModels, create_app

    if not args.model and not args.vlm and not args.index and not args.read and not args.t2i:
        raise ConfigError(
            "serve: give --model (a dual encoder), --vlm (a generative model), --t2i (a text-to-image model), "
            "--index, --read, or several"
        )
    if args.mask_tokenizer and not args.vlm:
        raise ConfigError("serve: --mask-tokenizer serves segmentation for a --vlm; give --vlm too")
    limits = limits_from(args)
    device = resolve_device(args.device)
    models = ServedModels()
    if args.read:
        from vlmkit.documents.engines import get_engine

        get_engine(args.read)  # an unknown engine or a missing extra fails now, not at the first request
        models.read_engine = args.read
    if args.model:
        models.encoder = _load(args.model, _encoder_kinds(), "--model", device)
        models.encoder_id = model_id(args.model, args.model_name)
    if args.vlm:
        models.chat = _load(args.vlm, (VisionLanguageModel, Decoder, Qwen2VLModel), "--vlm", device)
        models.chat_id = model_id(args.vlm, args.vlm_name)
        if args.model and models.chat_id == models.encoder_id:
            raise ConfigError(f"--model and --vlm are both called {models.chat_id!r}; set --model-name or --vlm-name")
    if args.mask_tokenizer:
        models.mask_tokenizer = _mask_tokenizer(args.mask_tokenizer, device)
    if args.t2i:
        from vlmkit.models.dit import DiT

        models.t2i = _load(args.t2i, (DiT,), "--t2i", device)
        models.t2i_id = model_id(args.t2i, None)
    if args.index:
        from vlmkit.search.store import SearchStore

        models.index = SearchStore.open(args.index)
        names = (args.model, models.encoder_id) if args.model else ()
        models.index_encoder = _index_encoder(models.index, models.encoder, names, device)
        models.index_encoder_id = models.encoder_id if models.index_encoder is models.encoder else models.index.model_id
        if models.encoder is None:  # the index alone: its model serves embeddings and classification too
            models.index_encoder_id = model_id(models.index.model_id, None)
            models.encoder, models.encoder_id = models.index_encoder, models.index_encoder_id
        models.images_root = (args.images_root or Path.cwd()).resolve()
        models.absolute_paths = args.absolute_paths
    return create_app(models, limits)


def run_serve(args: argparse.Namespace) -> int:
    require("uvicorn", "serve")
    import uvicorn

    options = uvicorn_options(args)
    app = build_app(args)
    if not is_loopback(args.host) and limits_from(args).api_key is None:
        print(f"vlmkit serve: warning: binding {args.host} without an API key; anyone who can reach it can use it",
              file=sys.stderr)  # fmt: skip
    # uvicorn stops accepting on SIGINT/SIGTERM, lets in-flight requests finish (at most one request
    # timeout), then runs the app's shutdown, which drains the model workers.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=args.timeout_s,
        **options,
    )
    return 0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
