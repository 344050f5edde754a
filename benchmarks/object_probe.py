"""Which of the ImageNet CNN's feature maps tells each object's colour, shape and size? A ShapesWorld probe.

For every object in a scene, a linear classifier reads the vision token whose cell holds the object's box
centre, exactly as ``train align --vision-layer L`` would hand it to the projector (pixel shuffle included).
It is trained (``--steps`` Adam steps of 256 objects) on the objects of ``--train-images`` training scenes
and scored on those of ``--val-images`` validation scenes. The head's 7x7 map blurs neighbouring objects
into one token; an earlier, finer map keeps them apart:

    .venv/bin/python benchmarks/object_probe.py --data sw10k --layers -1 5 --pixel-shuffle 1 2
"""

from __future__ import annotations

import argparse
import time

import torch
from PIL import Image

from linear_probe import linear_probe_accuracy
from vlmkit.data.records import Record, RecordDataset
from vlmkit.data.sources import decode_all
from vlmkit.models.projector import pixel_shuffle
from vlmkit.training.recipes.align import vision_tower

ATTRIBUTES = ("color", "shape", "size")


Scene = tuple[list[Record], list[tuple[int, int]]]  # records and their stored images' (width, height)


def feature_maps(folder: str, limit: int, layers: list[int]) -> tuple[Scene, dict[int, torch.Tensor]]:
    """The first ``limit`` records of a split, their image sizes, and the tower's feature map at each layer."""
    tower, processor = vision_tower("vlmkit:conse-effnet-minilm")
    dataset = RecordDataset(folder)
    records = [r for r in dataset.records if r.objects][:limit]
    paths = [dataset.image_path(r) for r in records]
    sizes = [Image.open(path).size for path in paths]
    pixels = decode_all(processor, [(str(path), str(path)) for path in paths], len(paths))
    maps: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    tower.eval()
    with torch.inference_mode():
        for start in range(0, len(pixels), 64):
            batch = processor.normalize(pixels[start : start + 64])
            for layer in layers:
                maps[layer].append(tower.feature_map(batch, layer).float())
    return (records, sizes), {layer: torch.cat(parts) for layer, parts in maps.items()}


def object_tokens(scene: Scene, feature_map: torch.Tensor, shuffle: int) -> tuple[torch.Tensor, dict[str, list[str]]]:
    """One token per object (the one covering its box centre) and the object's attributes."""
    tokens = feature_map.flatten(2).transpose(1, 2)
    if shuffle > 1:
        tokens = pixel_shuffle(tokens, shuffle)
    side = round(tokens.shape[1] ** 0.5)
    rows, labels = [], {name: [] for name in ATTRIBUTES}
    for index, (record, (width, height)) in enumerate(zip(*scene, strict=True)):
        for obj in record.objects or []:
            x0, y0, x1, y1 = obj.box
            column = min(int((x0 + x1) / 2 / width * side), side - 1)
            row = min(int((y0 + y1) / 2 / height * side), side - 1)
            rows.append(tokens[index, row * side + column])
            for name in ATTRIBUTES:
                labels[name].append(str(obj.extra[name]))
    return torch.stack(rows), labels


def standardized(x: torch.Tensor, x_val: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sets scaled by the training set's per-feature mean and deviation: channels of a CNN's maps
    differ in scale by orders of magnitude, and a probe should not favour the loud ones."""
    mean, std = x.mean(0), x.std(0) + 1e-4
    return (x - mean) / std, (x_val - mean) / std


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a ShapesWorld folder with train/ and val/")
    parser.add_argument("--layers", type=int, nargs="+", default=[-1, 5], help="feature maps (stem, stages, head)")
    parser.add_argument("--pixel-shuffle", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--train-images", type=int, default=3000)
    parser.add_argument("--val-images", type=int, default=500)
    parser.add_argument("--steps", type=int, default=3000, help="probe training steps (batches of 256)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    train, train_maps = feature_maps(f"{args.data}/train", args.train_images, args.layers)
    val, val_maps = feature_maps(f"{args.data}/val", args.val_images, args.layers)
    print(f"feature maps of {len(train[0])} + {len(val[0])} images in {time.perf_counter() - started:.0f} s")
    for layer in args.layers:
        for shuffle in args.pixel_shuffle:
            if train_maps[layer].shape[-1] % shuffle:
                continue
            x, y = object_tokens(train, train_maps[layer], shuffle)
            x_val, y_val = object_tokens(val, val_maps[layer], shuffle)
            x, x_val = standardized(x, x_val)
            scores = ", ".join(
                f"{name} {linear_probe_accuracy(x, y[name], x_val, y_val[name], args.steps, 256):.1f}%"
                for name in ATTRIBUTES
            )
            grid = train_maps[layer].shape[-1] // shuffle
            print(f"layer {layer}, pixel shuffle {shuffle} ({grid}x{grid} tokens of {x.shape[1]}): {scores}")


if __name__ == "__main__":
    main()
