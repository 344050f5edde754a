"""``vlmkit read FILE``: the text of a scan, photo or PDF in reading order; ``--json`` for words and boxes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vlmkit.cli import HelpFormatter
from vlmkit.documents.engines import DEFAULT_ENGINE, ENGINES
from vlmkit.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    read = subparsers.add_parser(
        "read", help="read the text of an image or PDF (OCR, or a PDF's text layer)", formatter_class=HelpFormatter
    )
    read.add_argument("file", help="image (PNG, JPEG, TIFF incl. multi-page, ...) or PDF")
    read.add_argument(
        "--engine", choices=sorted(ENGINES), default=DEFAULT_ENGINE, help="PP-OCRv4 (onnxruntime) or Tesseract"
    )
    read.add_argument("--json", action="store_true", help="print pages, lines and words with boxes and confidences")
    read.add_argument(
        "--out", default=None, help="PNG of the regions drawn over the page (page N of several: NAME-N.png)"
    )
    read.add_argument("--no-enhance", action="store_true", help="skip lighting flattening, deskew and upscaling")
    read.add_argument("--ocr-text-layer", action="store_true", help="OCR PDF pages even when they have a text layer")
    read.add_argument("--max-pages", type=int, default=200, help="refuse documents with more pages")
    read.set_defaults(handler=run_read)


def _page_path(out: Path, number: int, pages: int) -> Path:
    return out if pages == 1 else out.with_name(f"{out.stem}-{number}{out.suffix or '.png'}")


def run_read(args: argparse.Namespace) -> int:
    from vlmkit.documents.draw import draw_regions
    from vlmkit.documents.types import Document
    from vlmkit.progress import progress
    from vlmkit.tasks.documents import read_pages
    from vlmkit.visualize import save_png

    if args.max_pages < 1:
        raise ConfigError(f"--max-pages: expected at least 1, got {args.max_pages}")
    pages = read_pages(
        args.file,
        engine=args.engine,
        enhance=not args.no_enhance,
        use_text_layer=not args.ocr_text_layer,
        max_pages=args.max_pages,
    )
    read, images = [], []
    for image, page in progress(pages, desc="pages", unit="page", leave=False):
        read.append(page)
        if args.out:
            images.append(draw_regions(image, page))
    document = Document(str(args.file), tuple(read))
    for number, picture in enumerate(images, start=1):
        save_png(picture, _page_path(Path(args.out), number, len(images)))
    print(json.dumps(document.to_dict(), ensure_ascii=False, indent=1) if args.json else document.text)
    return 0
