"""FLIP's patch dropping: the time of a CLIP training step with a share of image patches dropped, as a ratio
to the same step with every patch, both measured in this process with their steps interleaved (so a
shared, busy machine slows both alike).

The model is the clip recipe's ``tiny`` preset at 64 px (``--conv-stem 2`` by default, as the documented
ShapesWorld command); the inputs are random pixels and token ids of the recipe's shapes, with twice as
many captions as images when ``--hard-negatives`` is on (as the recipe sends). A step is forward, backward
and an AdamW update. The conv stem still sees whole images: only the transformer's tokens shrink.

    python benchmarks/flip_step_time.py
    python benchmarks/flip_step_time.py --ratio 0.75 --rounds 10 --conv-stem 0
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vlmkit.config import clip_config
from vlmkit.models import DualEncoder
from vlmkit.models.vision import random_patch_keep
from vlmkit.training.losses import ClipLoss
from vlmkit.training.recipes.clip import PRESETS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratio", type=float, default=0.5, help="share of patches dropped (against 0)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--conv-stem", type=int, default=2)
    parser.add_argument("--context", type=int, default=32, help="caption tokens")
    parser.add_argument("--hard-negatives", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--rounds", type=int, default=6, help="steps per setting, interleaved, after one warm-up")
    args = parser.parse_args()

    torch.manual_seed(0)
    p = PRESETS["tiny"]
    config = clip_config(
        vision_width=p["width"],
        vision_layers=p["layers"],
        vision_heads=p["heads"],
        text_width=p["text_width"],
        text_layers=p["text_layers"],
        text_heads=p["heads"],
        embed_dim=p["embed_dim"],
        patch_size=p["patch_size"],
        image_size=args.image_size,
        vocab_size=512,
        context_length=args.context,
        act="gelu",
    )
    config.vision.conv_stem = args.conv_stem
    model = DualEncoder(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = ClipLoss()
    b = args.batch_size
    pixels = torch.randn(b, 3, args.image_size, args.image_size)
    ids = torch.randint(0, 511, (2 * b if args.hard_negatives else b, args.context))
    patches = config.vision.grid**2
    generator = torch.Generator().manual_seed(0)

    def step(ratio: float) -> tuple[float, float]:
        keep = random_patch_keep(b, patches, ratio, generator) if ratio else None
        wall, cpu = time.perf_counter(), time.process_time()
        out = model(pixels, ids, patch_keep=keep)
        negatives = out.text_embeds[b:] if args.hard_negatives else None
        loss_fn(out.image_embeds, out.text_embeds[:b], out.logit_scale, negatives).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - wall, time.process_time() - cpu

    settings = (0.0, args.ratio)
    times: dict[float, list[tuple[float, float]]] = {r: [] for r in settings}
    for r in settings:
        step(r)  # warm-up
    for _ in range(args.rounds):
        for r in settings:
            times[r].append(step(r))
    print(
        f"tiny CLIP, {args.image_size} px, {patches} patches, conv stem {args.conv_stem}, batch {b}, "
        f"{torch.get_num_threads()} threads, {args.rounds} interleaved steps each (medians)"
    )
    print("ratio  kept  wall s/step  cpu s/step")
    for r in settings:
        wall = statistics.median(t[0] for t in times[r])
        cpu = statistics.median(t[1] for t in times[r])
        print(f"{r:5.2f}  {max(1, int(patches * (1 - r))):4d}  {wall:11.3f}  {cpu:10.3f}")
    base_wall, base_cpu = (statistics.median(t[k] for t in times[0.0]) for k in (0, 1))
    wall, cpu = (statistics.median(t[k] for t in times[args.ratio]) for k in (0, 1))
    print(f"speed-up at ratio {args.ratio}: {base_wall / wall:.2f}x wall, {base_cpu / cpu:.2f}x cpu")


if __name__ == "__main__":
    main()
