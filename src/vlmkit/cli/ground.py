"""``vlmkit detect | segment``: boxes and masks from a grounding VLM, as a picture, a table or JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from vlmkit.cli import VLM, HelpFormatter, add_device_option, load_model

if TYPE_CHECKING:
    from vlmkit.tasks.ground import Grounding


def _common(parser: argparse.ArgumentParser, labels_help: str, labels_optional: bool) -> None:
    parser.add_argument("image", help="image file")
    parser.add_argument("labels", nargs="?" if labels_optional else None, help=labels_help)
    parser.add_argument(
        "--model", required=True, help="a VLM with location tokens (`train instruct --grounding-share`, PaliGemma)"
    )
    parser.add_argument("--out", type=Path, help="write a PNG with the boxes (and masks) drawn over the image")
    parser.add_argument("--json", action="store_true", help="print the objects as JSON (masks as COCO RLE)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="most tokens to generate (default: by labels)")
    add_device_option(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    detect = subparsers.add_parser(
        "detect",
        help="find objects: boxes for labels ('star ; circle'), a referring expression, or everything",
        description="Ask the model `detect LABELS` (PaliGemma's prompt) and print each object it names with its box "
        "in pixels [x0, y0, x1, y1]. Without LABELS it is asked for every object (the all-objects task).",
        formatter_class=HelpFormatter,
    )
    _common(detect, "labels separated by ';', or one referring expression (default: every object)", True)
    detect.set_defaults(handler=run_detect)

    segment = subparsers.add_parser(
        "segment",
        help="masks for labels or a referring expression ('the red star')",
        description="Ask the model `segment LABELS` and decode each object's 16 mask codes with the mask tokenizer.",
        formatter_class=HelpFormatter,
    )
    _common(segment, "labels separated by ';', or one referring expression", False)
    segment.add_argument(
        "--mask-tokenizer", required=True, help="the mask tokenizer the model was trained with (`train mask-vae`)"
    )
    segment.set_defaults(handler=run_segment)


def run_detect(args: argparse.Namespace) -> int:
    from vlmkit.tasks.ground import ALL_OBJECTS_BUDGET, detect, detect_all

    model = load_model(args.model, args.device, "detect", [VLM])
    if args.labels is None:
        result = detect_all(model, args.image, args.max_new_tokens or ALL_OBJECTS_BUDGET)
    else:
        result = detect(model, args.image, args.labels, args.max_new_tokens)
    return _report(args, result)


def run_segment(args: argparse.Namespace) -> int:
    from vlmkit.tasks.segment import load_mask_codec, segment

    model = load_model(args.model, args.device, "segment", [VLM])
    codec = load_mask_codec(args.mask_tokenizer, device=str(model.device))
    return _report(args, segment(model, args.image, args.labels, codec, args.max_new_tokens))


def _report(args: argparse.Namespace, result: Grounding) -> int:
    if args.out:
        from vlmkit.tasks.pictures import draw_objects
        from vlmkit.visualize import save_png

        save_png(draw_objects(args.image, result.objects), args.out)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    for item in result.objects:
        box = ", ".join(f"{v:.1f}" for v in item.box)
        area = "" if item.mask is None else f"  mask {int(item.mask.sum())} px"
        print(f"{item.label or '(no label)'}  [{box}]{area}")
    if not result.objects:
        print(f"no object found; the model wrote: {result.text!r}")
    elif result.unparsed:
        print(f"not understood: {' ; '.join(result.unparsed)!r}")
    if args.out:
        print(f"picture: {args.out}")
    return 0
