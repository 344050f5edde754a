"""PP-OCRv4 against Tesseract on the same pages, in one run: character error rate and pages per second.

Pages: a DocWorld test split (scan-like: rotation, blur, noise, uneven light, JPEG; made here when --data is
not given) and scikit-image's photographed book page. Both engines read the very same images through
``tasks.documents.read_image`` (same enhancement), so the ratio of their speeds is what this machine gives,
whatever its load.

    .venv/bin/python benchmarks/ocr.py --pages 50
    .venv/bin/python benchmarks/ocr.py --data docworld/test --engines ppocr
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image


def book_page_recall(engine: str) -> tuple[float, float]:
    """(word recall, seconds) on scikit-image's data.page(), against the text of tests/tasks/test_documents."""
    from skimage import data

    from vlmkit.evaluation.documents import word_recall
    from vlmkit.tasks.documents import read_image

    truth = (Path(__file__).resolve().parents[1] / "tests" / "tasks" / "book_page.txt").read_text(encoding="utf-8")
    start = time.perf_counter()
    text = read_image(Image.fromarray(data.page()).convert("RGB"), engine=engine).text
    return word_recall(text, truth), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a DocWorld split folder (default: generate --pages of them)")
    parser.add_argument("--pages", type=int, default=50, help="pages to generate and read")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engines", default="ppocr,tesseract", help="comma-separated engine names")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    from vlmkit.data.docworld import DocWorldConfig, generate_split
    from vlmkit.data.records import RecordDataset
    from vlmkit.evaluation.reading import reading_scores

    engines = [e for e in args.engines.split(",") if e != "tesseract" or shutil.which("tesseract")]
    with tempfile.TemporaryDirectory(prefix="vlmkit-ocr-bench-") as scratch:
        folder = args.data
        if folder is None:
            folder = Path(scratch) / "test"
            generate_split(folder, DocWorldConfig(), "test", args.pages, seed=args.seed, workers=1)
        dataset = RecordDataset(folder)
        records = dataset.records[: args.pages]
        figures = {}
        for engine in engines:
            scores = reading_scores(dataset, records, engine)
            recall, seconds = book_page_recall(engine)
            figures[engine] = {**{k: v for k, v in scores.items() if k != "worst"}, "book_page_recall": recall}
            print(
                f"{engine:>10}: CER {scores['cer']:.2%}  WER {scores['wer']:.2%}  word recall "
                f"{scores['word_recall']:.3f}  {scores['pages_per_s']:.2f} pages/s on {scores['pages']} DocWorld "
                f"pages; book page word recall {recall:.3f} ({seconds:.1f} s)"
            )
            for kind, result in scores["by_kind"].items():
                print(f"{'':>12}{kind:<9} CER {result['cer']:.2%}  WER {result['wer']:.2%}  ({result['pages']} pages)")
        if len(figures) == 2:
            first, second = figures
            ratio = figures[first]["pages_per_s"] / max(figures[second]["pages_per_s"], 1e-9)
            print(f"{first} reads {ratio:.2f}x the pages per second of {second} on the same pages")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
