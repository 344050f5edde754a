"""``vlmkit bench`` harness throughput: questions per second with batching vs one question at a time.

One run, one model, one file: a random small VLM (ViT 64 px / 8, decoder width 128, 4 blocks, a byte-level BPE
of 512 tokens) answers a synthetic MMBench TSV (``--questions`` questions, four options each, so four circular
copies per question) through ``harness.run_task``, once with ``--batch-size`` 1 and once with ``--batch-size B``,
each into a fresh folder (nothing cached), alternated ``--repeats`` times; the figure is the median. The ratio
is batched over unbatched; "same predictions" says whether both runs answered every copy alike.

    .venv/bin/python benchmarks/bench_throughput.py [--questions 64] [--batch-size 16] [--max-new-tokens 8]
        [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from vlmkit.bench import get_task
from vlmkit.bench.backends import VlmkitBackend
from vlmkit.bench.harness import run_task
from vlmkit.config import DecoderConfig, ProjectorConfig, VisionConfig, VlmConfig
from vlmkit.models import VisionLanguageModel
from vlmkit.processing.images import ImagePreprocessor
from vlmkit.processing.text import train_bpe_tokenizer

COLORS = ["red", "green", "blue", "yellow", "purple", "orange"]


def small_vlm(device: str) -> VisionLanguageModel:
    corpus = [f"what colour is the {c} square? answer with the option's letter. a b c d" for c in COLORS] * 20
    tokenizer = train_bpe_tokenizer(corpus, vocab_size=512, special_tokens=["<image>"], max_length=512)
    config = VlmConfig(
        vision=VisionConfig(image_size=64, patch_size=8, width=128, layers=4, heads=4, mlp_dim=512, act="gelu"),
        projector=ProjectorConfig(pixel_shuffle=2),
        decoder=DecoderConfig(
            vocab_size=tokenizer.vocab_size, width=128, layers=4, heads=4, kv_heads=2, mlp_dim=512,
            max_positions=512, bos_token_id=tokenizer.bos_id, eos_token_ids=(tokenizer.eos_id,),
            pad_token_id=tokenizer.pad_id,
        ),
        image_token_id=tokenizer.tokenizer.token_to_id("<image>"),
    )  # fmt: skip
    model = VisionLanguageModel(config).eval().to(device)
    model.tokenizer, model.image_processor = tokenizer, ImagePreprocessor.clip(64)
    return model


def write_mmbench(path: Path, questions: int) -> Path:
    generator = torch.Generator().manual_seed(0)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["index", "question", "A", "B", "C", "D", "answer", "category", "image"])
        for index in range(questions):
            pixels = torch.randint(0, 256, (64, 64, 3), generator=generator, dtype=torch.uint8).numpy()
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="PNG")
            options = [COLORS[(index + k) % len(COLORS)] for k in range(4)]
            image = base64.b64encode(buffer.getvalue()).decode()
            writer.writerow([index, "What colour is the square?", *options, "A", COLORS[index % 3], image])
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    task = get_task("mmbench")
    backend = VlmkitBackend(small_vlm(args.device), "small-vlm")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        data = write_mmbench(root / "mmbench.tsv", args.questions)
        seconds: dict[int, list[float]] = {1: [], args.batch_size: []}
        predictions: dict[int, str] = {}
        for repeat in range(args.repeats + 1):  # the first round warms up and is not timed
            for batch in seconds:
                out = root / f"run-{repeat}-{batch}"
                start = time.perf_counter()
                run_task(task, data, backend, out, batch_size=batch, max_new_tokens=args.max_new_tokens)
                if repeat:
                    seconds[batch].append(time.perf_counter() - start)
                predictions[batch] = (out / "mmbench" / "predictions.jsonl").read_text()
    asked = args.questions * 4
    rates = {batch: asked / statistics.median(values) for batch, values in seconds.items()}
    print(f"{asked} prompts ({args.questions} MMBench questions x 4 rotations), {args.max_new_tokens} new tokens, "
          f"device {args.device}, torch threads {torch.get_num_threads()}")  # fmt: skip
    print(f"batch 1:  {rates[1]:8.1f} questions/s")
    print(f"batch {args.batch_size}: {rates[args.batch_size]:8.1f} questions/s")
    print(f"ratio (batched / unbatched): {rates[args.batch_size] / rates[1]:.2f}x")
    print(f"same predictions: {'yes' if predictions[1] == predictions[args.batch_size] else 'no'}")


if __name__ == "__main__":
    main()
