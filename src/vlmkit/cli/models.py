"""``vlmkit info | classify | embed``: use a model directory from the command line."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np

from vlmkit.cli import DUAL_ENCODER, HelpFormatter, add_device_option, load_model
from vlmkit.errors import InputError

DUAL_ENCODER_MODEL = "dual encoder directory, hub id or vlmkit:conse-effnet-minilm (CLIP, SigLIP, ConSE)"


def register(subparsers: argparse._SubParsersAction) -> None:
    info = subparsers.add_parser("info", help="describe a model directory", formatter_class=HelpFormatter)
    info.add_argument("model", help="model directory, hub id or vlmkit:NAME")
    info.set_defaults(handler=run_info)

    export = subparsers.add_parser(
        "export",
        help="write a model as a directory transformers loads with its own class",
        formatter_class=HelpFormatter,
    )
    export.add_argument("model", help="model directory, hub id or vlmkit:NAME")
    export.add_argument(
        "--format",
        choices=["hf"],
        default="hf",
        help="hf: transformers' own class: LlamaForCausalLM (a decoder), LlavaForConditionalGeneration (a "
        "LLaVA-shaped VLM), Idefics3ForConditionalGeneration (Idefics3 / SmolVLM), Qwen2VLForConditionalGeneration "
        "/ Qwen2_5_VLForConditionalGeneration (Qwen2-VL / Qwen2.5-VL)",
    )
    export.add_argument("--out", required=True, type=Path, help="output directory")
    export.set_defaults(handler=run_export)

    classify = subparsers.add_parser(
        "classify", help="zero-shot classification of images against labels", formatter_class=HelpFormatter
    )
    classify.add_argument("images", nargs="+", help="image files")
    classify.add_argument("--labels", required=True, help="comma-separated labels, e.g. 'cat,dog,car'")
    classify.add_argument("--model", required=True, help=DUAL_ENCODER_MODEL)
    classify.add_argument(
        "--template",
        action="append",
        dest="templates",
        help="prompt template with {} for the label (repeat to ensemble; default: 'a photo of a {}.')",
    )
    classify.add_argument("--top-k", type=int, default=3, help="labels shown per image")
    classify.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    add_device_option(classify, dtype=True)
    classify.set_defaults(handler=run_classify)

    embed = subparsers.add_parser(
        "embed", help="embed images (or texts) into an .npy file", formatter_class=HelpFormatter
    )
    embed.add_argument("inputs", nargs="+", help="image files, or strings with --text")
    embed.add_argument("--model", required=True, help=DUAL_ENCODER_MODEL)
    embed.add_argument("--out", required=True, type=Path, help="output .npy (rows in input order)")
    embed.add_argument("--text", action="store_true", help="the inputs are texts, not image files")
    embed.add_argument("--batch-size", type=int, default=32, help="inputs per model call")
    add_device_option(embed, dtype=True)
    embed.set_defaults(handler=run_embed)


def run_info(args: argparse.Namespace) -> int:
    from vlmkit.checkpoints import from_pretrained

    model = from_pretrained(args.model)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"model: {args.model}")
    print(f"architecture: {type(model).__name__} ({parameters / 1e6:.2f}M parameters)")
    print(f"tokenizer: {'yes' if getattr(model, 'tokenizer', None) else 'no'}")
    processor = getattr(model, "image_processor", None)
    print(f"image processor: {json.dumps(processor.to_dict()) if processor else 'no'}")
    print("config: " + json.dumps(model.config.to_dict(), indent=2))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from vlmkit.checkpoints import from_pretrained
    from vlmkit.checkpoints.export import export_hf

    out = export_hf(from_pretrained(args.model), args.out)
    print(f"wrote {out} (load it with transformers' AutoModelForImageTextToText / AutoModelForCausalLM)")
    return 0


def run_classify(args: argparse.Namespace) -> int:
    from vlmkit.tasks import classify
    from vlmkit.tasks.classify import DEFAULT_TEMPLATES

    labels = [label.strip() for label in args.labels.split(",") if label.strip()]
    if not labels:
        raise InputError("--labels is empty; give comma-separated labels such as 'cat,dog'")
    model = load_model(args.model, args.device, "classify", [DUAL_ENCODER], args.dtype)
    results = classify(model, args.images, labels, templates=args.templates or DEFAULT_TEMPLATES, top_k=args.top_k)
    for image, predictions in zip(args.images, results, strict=True):
        if args.json:
            print(
                json.dumps(
                    {
                        "image": image,
                        "predictions": [{"label": p.label, "probability": p.probability} for p in predictions],
                    }
                )
            )
        else:
            print(image + ": " + ", ".join(f"{p.label} {p.probability:.3f}" for p in predictions))
    return 0


def run_embed(args: argparse.Namespace) -> int:
    from vlmkit.files import atomic_write_bytes
    from vlmkit.tasks import embed_images, embed_texts

    model = load_model(args.model, args.device, "embed", [DUAL_ENCODER], args.dtype)
    if args.text:
        vectors = embed_texts(model, args.inputs, batch_size=args.batch_size)
    else:
        vectors = embed_images(model, args.inputs, batch_size=args.batch_size)
    buffer = io.BytesIO()
    np.save(buffer, vectors.numpy().astype(np.float32))
    atomic_write_bytes(args.out, buffer.getvalue())
    print(f"wrote {tuple(vectors.shape)} embeddings to {args.out}")
    return 0
