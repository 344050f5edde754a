"""The floor of VideoWorld: what answering from the training split's statistics alone scores (no video seen).

For each question the commonest training answer of the same question text (else of its type), for each
grounding query the mean training moment, for each clip the commonest training caption
(``evaluation.video.prior_predictions``), scored by ``evaluation.video.score_clips`` on each split given.
A video model's figures mean something only well above these.

    vlmkit data video --out videoworld --n 1000 --split all --n-test 200 --n-compositional 200
    .venv/bin/python benchmarks/video_prior.py videoworld/train videoworld/test videoworld/compositional
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vlmkit.evaluation.video import prior_predictions, score_clips


def _records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "records.jsonl").read_text(encoding="utf-8").splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train", type=Path, help="the VideoWorld training split folder")
    parser.add_argument("splits", type=Path, nargs="+", help="split folders to score")
    args = parser.parse_args()
    train = _records(args.train)
    for folder in args.splits:
        records = _records(folder)
        result = score_clips(records, prior_predictions(train, records))
        qa, moments, captions = result["qa"], result["grounding"], result["caption"]
        types = ", ".join(f"{kind} {value:.3f}" for kind, value in qa["per_type"].items())
        print(f"{folder.name}: QA {qa['accuracy']:.3f} of {qa['count']} ({types})")
        print(f"  grounding mIoU {moments['miou']:.3f}, R@1 IoU>=0.5 {moments['r1@0.5']:.3f} of {moments['count']}")
        print(f"  caption CIDEr-D {captions['cider']:.3f} of {captions['count']}")


if __name__ == "__main__":
    main()
