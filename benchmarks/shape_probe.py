"""How fast can an image tower learn shape at all? A supervised diagnostic for ShapesWorld.

A tiny CLIP on ShapesWorld names the biggest object's colour but not its shape (README, "Results"). This
script asks the question under the easiest possible signal: it trains an image tower from scratch with a
direct 8-way label, the subject's shape (plus its colour, as a control), and prints held-out accuracy
every ``--eval-every`` steps. A tower that cannot reach 90% here within a CPU budget will not reach it
through a contrastive loss, whose shape signal is weaker.

Towers: ``vit`` (the tiny CLIP preset's ViT with the ``--conv-stem`` / ``--conv-stem-norm`` options) and
``cnn``, a reference five-layer BatchNorm CNN with global average pooling (not a vlmkit model).

    vlmkit data shapes --out sw10k --n 10000 --split all --n-val 500 --n-test 1000 --n-compositional 1000
    .venv/bin/python benchmarks/shape_probe.py --data sw10k --tower vit --conv-stem 3 --conv-stem-norm batch
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from vlmkit.config import clip_config
from vlmkit.data.records import RecordDataset
from vlmkit.data.sources import decode_all
from vlmkit.models.vision import VisionTransformer
from vlmkit.processing.images import ImagePreprocessor
from vlmkit.training.optim import warmup_cosine_schedule


def cnn(width: int) -> nn.Module:
    def conv(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

    layers = conv(3, 32, 2) + conv(32, 64, 1) + conv(64, 64, 2) + conv(64, width, 1) + conv(width, width, 2)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def load(folder: str, processor: ImagePreprocessor) -> tuple[torch.Tensor, list[list[str]]]:
    dataset = RecordDataset(folder)
    paths = [str(dataset.image_path(r)) for r in dataset.records]
    pixels = decode_all(processor, zip(paths, paths, strict=True), len(paths), workers=1)
    return pixels, [(r.labels or {})["color_shape"].split() for r in dataset.records]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="ShapesWorld folder with train/ and test/")
    parser.add_argument("--tower", choices=("vit", "cnn"), default="vit")
    parser.add_argument("--conv-stem", type=int, default=0)
    parser.add_argument("--conv-stem-norm", choices=("none", "batch"), default="none")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    args = parser.parse_args()

    torch.manual_seed(0)
    processor = ImagePreprocessor.clip(64)
    train_pixels, train_labels = load(f"{args.data}/train", processor)
    test_pixels, test_labels = load(f"{args.data}/test", processor)
    colors = sorted({color for color, _ in train_labels})
    shapes = sorted({shape for _, shape in train_labels})

    def targets(labels: list[list[str]]) -> torch.Tensor:
        return torch.tensor([[shapes.index(shape), colors.index(color)] for color, shape in labels])

    train_y, test_y = targets(train_labels), targets(test_labels)
    vision = clip_config(
        vision_width=128, vision_layers=4, vision_heads=4, patch_size=8, image_size=64, act="gelu"
    ).vision
    vision.conv_stem, vision.conv_stem_norm = args.conv_stem, args.conv_stem_norm
    tower = VisionTransformer(vision) if args.tower == "vit" else cnn(128)
    model = nn.Sequential(tower, nn.Linear(128, len(shapes) + len(colors)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1, betas=(0.9, 0.98), eps=1e-6)
    schedule = warmup_cosine_schedule(optimizer, min(50, args.steps // 10), args.steps)
    autocast = torch.autocast("cpu", torch.bfloat16, enabled=args.precision == "bf16")

    def logits(pixels: torch.Tensor) -> torch.Tensor:
        with autocast:
            return model(processor.normalize(pixels)).float()

    def predict() -> torch.Tensor:
        """(test images, 2): predicted shape and colour indices."""
        model.eval()
        with torch.inference_mode():
            out = torch.cat([logits(test_pixels[i : i + 250]) for i in range(0, len(test_pixels), 250)])
        model.train()
        return torch.stack([out[:, : len(shapes)].argmax(1), out[:, len(shapes) :].argmax(1)], dim=1)

    print(f"{args.tower} conv_stem={args.conv_stem} norm={args.conv_stem_norm}: {len(train_y)} train images")
    order, position, start = torch.randperm(len(train_y)), 0, time.perf_counter()
    for step in range(1, args.steps + 1):
        if position + args.batch_size > len(order):
            order, position = torch.randperm(len(train_y)), 0
        batch = order[position : position + args.batch_size]
        position += args.batch_size
        out = logits(train_pixels[batch])
        loss = F.cross_entropy(out[:, : len(shapes)], train_y[batch, 0])
        loss = loss + F.cross_entropy(out[:, len(shapes) :], train_y[batch, 1])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % args.eval_every == 0 or step == args.steps:
            predicted = predict()
            shape, color = (predicted == test_y).float().mean(0).tolist()
            seconds = time.perf_counter() - start
            print(
                f"step {step:5d}  shape {100 * shape:5.1f}%  colour {100 * color:5.1f}%  ({seconds:.0f} s)", flush=True
            )
    print("shape recall by class (most frequent wrong answer):")
    for k, name in enumerate(shapes):
        rows = predicted[test_y[:, 0] == k, 0]
        wrong = rows[rows != k]
        confused = f", else {shapes[int(wrong.mode().values)]}" if len(wrong) else ""
        print(f"  {name:9s} {100 * (rows == k).float().mean().item():5.1f}% of {len(rows)}{confused}")


if __name__ == "__main__":
    main()
