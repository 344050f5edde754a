"""How far off are a grounding VLM's boxes, token by token? A teacher-forced probe of its location tokens.

Free-running AP50 stays at zero until a model writes whole boxes right, long after it has begun to place
them. This probe scores every coordinate on its own instead: for the first ``--images`` scenes of a
ShapesWorld split (records with ``objects``), the all-objects conversation exactly as ``train instruct``
builds it (``data.grounding.grounding_turns``: ``detect every object`` -> every box in reading order) and,
for each object, the referring turn ``vlmkit eval`` asks of it (``evaluation.detection.referring_set``:
``detect EXPRESSION`` -> its one box), are encoded with the true answer as training encodes them (the
model's chat encoder, ``image_first``; labels on the answer) and run through ONE forward pass (right-padded
batches, as ``train instruct`` collates them). At every position whose target is a ``<locNNNN>`` token the
prediction is the argmax over the 1024 location tokens only, and its error is ``|predicted bin - true bin|``
in pixels of the stored image (``bin / 1023 * side``: y by the height, x by the width; boxes are written
``y0 x0 y1 x1``). Each row also gives the constant guess: every coordinate of a kind predicted as the mean
true bin of that kind over the row's own coordinates (no training; the same scenes). The first object's
row matters most: its coordinates are where the model must choose among several objects, the rest follow
from the object it chose.

    .venv/bin/python benchmarks/location_probe.py RUN/model sw10k/test --images 64 [--batch-size 16] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from PIL import Image

from vlmkit.checkpoints import from_pretrained
from vlmkit.data.grounding import grounding_turns, record_size
from vlmkit.data.records import Record, RecordDataset
from vlmkit.devices import resolve_device
from vlmkit.errors import InputError
from vlmkit.evaluation.detection import referring_set
from vlmkit.models import VisionLanguageModel
from vlmkit.processing.images import load_image
from vlmkit.processing.locations import LOC_BINS, detect_prompt, format_object, format_objects, location_token_ids
from vlmkit.tasks.ground import check_grounding
from vlmkit.training.recipes.chat import image_first, processed_chat_batch

KINDS = ("y0", "x0", "y1", "x1")  # PaliGemma's order of a box's four location tokens


@dataclass(frozen=True)
class Probe:
    """One conversation to force: its image, the image's (width, height), the prompt and the true answer."""

    image: Image.Image
    size: tuple[int, int]
    prompt: str
    answer: str


@dataclass(frozen=True)
class Coordinate:
    """One location token of a true answer: its kind (index into ``KINDS``), its object's place in the answer,
    the model's and the true bin, and the image side (pixels) it is a fraction of."""

    kind: int
    object: int
    predicted: int
    true: int
    side: int

    def error(self, predicted: float | None = None) -> float:
        """|predicted - true| in pixels, of the model's bin or of ``predicted`` instead."""
        guess = self.predicted if predicted is None else predicted
        return abs(guess - self.true) / (LOC_BINS - 1) * self.side


@dataclass(frozen=True)
class Score:
    """Mean pixel error of some coordinates, the constant guess's, the model's share within 1 px, how many."""

    error: float
    constant: float
    within_1px: float
    count: int


def probes(dataset: RecordDataset, limit: int) -> tuple[list[Probe], list[Probe]]:
    """The all-objects conversation of each of the first ``limit`` scenes with objects and a known size, and
    the referring turn of each of their objects with an expression."""
    scenes: list[Record] = [r for r in dataset.records if r.objects and record_size(r) is not None][:limit]
    images = [load_image(dataset.image_path(r)) for r in scenes]
    sizes: list[tuple[int, int]] = [record_size(r) for r in scenes]  # type: ignore[misc]
    everything = []
    for record, image, size in zip(scenes, images, sizes, strict=True):
        ((prompt, answer),) = grounding_turns(record, random.Random(0), 1, kinds=("all",))
        everything.append(Probe(image, size, prompt, answer))
    referring = []
    for i, j, expression in referring_set(scenes):
        box = (scenes[i].objects or [])[j].box
        answer = format_objects([format_object(expression, box, *sizes[i])])
        referring.append(Probe(images[i], sizes[i], detect_prompt(expression), answer))
    return everything, referring


def forced(model: VisionLanguageModel, items: Sequence[Probe], batch_size: int) -> list[list[Coordinate]]:
    """Each conversation's location tokens, predicted by one teacher-forced forward pass over prompt + answer."""
    location_ids = location_token_ids(model.tokenizer)  # type: ignore[arg-type]
    bin_of = {token: index for index, token in enumerate(location_ids)}
    columns = torch.tensor(location_ids, device=model.device)
    found: list[list[Coordinate]] = []
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        conversations = [
            (
                item.image,
                image_first([{"role": "user", "content": item.prompt}, {"role": "assistant", "content": item.answer}]),
            )
            for item in batch
        ]
        forced_batch = processed_chat_batch(model, conversations)
        labels = forced_batch.labels
        extra = {name: value.to(model.device) for name, value in forced_batch.image_arguments.items()}
        with torch.inference_mode():
            # labels: a prefix-LM reads the prompt as one block and the answer causally, as in training
            output = model(
                forced_batch.input_ids.to(model.device),
                labels=labels.to(model.device),
                pixel_values=forced_batch.pixels.to(model.device),  # type: ignore[union-attr]
                **extra,
            )
            predicted = output.logits[:, :-1].index_select(-1, columns).argmax(-1).cpu()  # position t predicts t + 1
        for row, item in enumerate(batch):
            targets = labels[row, 1:].tolist()
            positions = [t for t, token in enumerate(targets) if token in bin_of]
            if len(positions) % 4:
                raise InputError(f"{item.prompt!r}: the answer has {len(positions)} location tokens, not whole boxes")
            width, height = item.size
            found.append(
                [
                    Coordinate(
                        k % 4, k // 4, int(predicted[row, t]), bin_of[targets[t]], height if k % 2 == 0 else width
                    )
                    for k, t in enumerate(positions)
                ]
            )
    return found


def score(coordinates: Sequence[Coordinate]) -> Score:
    """The model's and the constant guess's mean pixel error; the constant is each kind's mean true bin here."""
    if not coordinates:
        return Score(float("nan"), float("nan"), float("nan"), 0)
    means = {}
    for kind in range(len(KINDS)):
        bins = [c.true for c in coordinates if c.kind == kind]
        means[kind] = round(sum(bins) / len(bins)) if bins else 0
    errors = [c.error() for c in coordinates]
    constant = sum(c.error(means[c.kind]) for c in coordinates) / len(coordinates)
    within = sum(e <= 1.0 for e in errors) / len(errors)
    return Score(sum(errors) / len(errors), constant, within, len(coordinates))


def report(everything: list[list[Coordinate]], referring: list[list[Coordinate]]) -> dict[str, dict[str, Score]]:
    """Scores by row: all objects, the first object, the referring box; each overall and per kind."""
    groups = {
        "all_objects": [c for row in everything for c in row],
        "first_object": [c for row in everything for c in row if c.object == 0],
        "referring": [c for row in referring for c in row],
    }
    return {
        name: {"all": score(found), **{k: score([c for c in found if c.kind == i]) for i, k in enumerate(KINDS)}}
        for name, found in groups.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a grounding VLM (`train instruct --grounding-share`, or PaliGemma)")
    parser.add_argument("data", help="a ShapesWorld split folder (records with objects and refexp)")
    parser.add_argument("--images", type=int, default=64, help="the first N scenes with objects")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON instead of a table")
    args = parser.parse_args()
    model = from_pretrained(args.model, device=resolve_device(args.device)).eval()
    check_grounding(model)
    everything, referring = probes(RecordDataset(args.data), args.images)
    if not everything:
        raise SystemExit(f"{args.data}: no record with objects and a known image size")
    scores = report(forced(model, everything, args.batch_size), forced(model, referring, args.batch_size))  # type: ignore[arg-type]
    if args.json:
        numbers = {name: {k: asdict(s) for k, s in row.items()} for name, row in scores.items()}
        print(json.dumps({"scenes": len(everything), "referents": len(referring), **numbers}, indent=2))
        return
    print(f"{len(everything)} scenes, {len(referring)} referents; mean |error| in pixels")
    print(f"{'coordinates':<16} {'kind':<4} {'model':>7} {'constant':>8} {'<=1 px':>7} {'count':>6}")
    for name, row in scores.items():
        label = name.replace("_", " ")
        for kind, s in row.items():
            print(f"{label:<16} {kind:<4} {s.error:7.2f} {s.constant:8.2f} {s.within_1px:7.3f} {s.count:6d}")


if __name__ == "__main__":
    main()
