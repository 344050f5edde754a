"""How much of a ShapesWorld image's subject (its shape, its colour) a frozen image tower's features hold:
a linear probe (``linear_probe.linear_probe_accuracy``, features standardised) on the tower's pooled output
and on the mean of its final patch tokens, fitted on the first images of ``train`` and scored on ``test``.

The tower is read as ``train align --vision-from`` reads it: a ``train mae`` run, a ``train clip`` run or
a model directory. ``--random`` scores a freshly initialised tower of the same shape instead (seed 0), the
floor a pretrained tower should rise above. Chance is 12.5% for shape (8 shapes).

    python benchmarks/tower_probe.py --tower runs/mae --data sw10k
    python benchmarks/tower_probe.py --tower runs/mae --data sw10k --random
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from linear_probe import linear_probe_accuracy
from vlmkit.data.sources import open_images
from vlmkit.models import VisionTransformer
from vlmkit.training.recipes.align import vision_tower


def features(tower: VisionTransformer, processor, spec: str, limit: int) -> tuple[dict[str, torch.Tensor], list]:
    """(pooled, mean of patch tokens) per image, and the records' labels."""
    images = open_images(spec, processor, mode="memory", limit=limit)
    pooled, mean = [], []
    with torch.inference_mode():
        for start in range(0, len(images.records), 256):
            pixels = processor.normalize(images.pixels(range(start, min(start + 256, len(images.records)))))
            tokens = tower.post_norm(tower.encode_tokens(pixels))
            pooled.append(tower(pixels))
            mean.append(tokens[:, int(tower.config.class_token) :].mean(dim=1))
    labels = [r.labels or {} for r in images.records]
    return {"pooled": torch.cat(pooled), "patch mean": torch.cat(mean)}, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tower", required=True, help="a train mae / train clip run or model directory")
    parser.add_argument("--data", required=True, help="a ShapesWorld root with train/ and test/")
    parser.add_argument("--random", action="store_true", help="a fresh tower of the same shape (seed 0)")
    parser.add_argument("--train-images", type=int, default=3000)
    parser.add_argument("--test-images", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000, help="probe Adam steps")
    args = parser.parse_args()

    tower, processor = vision_tower(args.tower)
    if not isinstance(tower, VisionTransformer):
        raise SystemExit(f"{args.tower}: a ViT tower is needed")
    if args.random:
        torch.manual_seed(0)
        tower = VisionTransformer(tower.config)
    tower.eval()
    root = Path(args.data)
    train, train_labels = features(tower, processor, str(root / "train"), args.train_images)
    test, test_labels = features(tower, processor, str(root / "test"), args.test_images)
    print(
        f"{args.tower}{' (random init)' if args.random else ''}: linear probe, {len(train_labels)} train / "
        f"{len(test_labels)} test images, {args.steps} steps"
    )
    for name in train:
        mean, std = train[name].mean(0), train[name].std(0) + 1e-4  # standardised by the fitting images
        x, x_test = (train[name] - mean) / std, (test[name] - mean) / std
        scores = []
        for key in ("shape", "color"):
            y, y_test = [lab[key] for lab in train_labels], [lab[key] for lab in test_labels]
            scores.append(f"{key} {linear_probe_accuracy(x, y, x_test, y_test, args.steps, 256):.1f}%")
        print(f"  {name:10s} " + ", ".join(scores))


if __name__ == "__main__":
    main()
