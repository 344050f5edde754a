"""GenEval for ShapesWorld: GenEval's six tasks (Ghosh et al., 2023) with prompts from held-out captions,
scored by reading the generated image back into objects (``scene_reader``).

Each prompt is a caption ShapesWorld wrote for a held-out image, and its requirements are that image's
objects, so prompt and requirements agree by construction:

- ``single_object``: "a single star" (1-object images): exactly one object, a star.
- ``two_objects``: "two shapes: a heart and a cross": exactly two objects, those shapes.
- ``counting``: "three shapes: a circle, a star and a cross" (3-4 objects): exactly that many, those shapes.
- ``colors``: "a yellow cross": a yellow cross is there.
- ``position``: "a small red star above a large blue circle": both (colour and shape) there, as distinct
  objects, the relation holding between their box centres by half the generator's margin. Size words
  are not scored (GenEval's position task does not score attributes either).
- ``colour_attribution``: "a red star and a blue circle" (different colours, different shapes): both,
  as distinct objects.

An image counts only if every requirement holds; a task's score is the share of its images that do,
and ``overall`` is the mean of the six (GenEval's overall). Prompts from the ``compositional`` split
name at least one colour-shape pair never seen in training. ``validate_reader`` measures the reader on
real renders against their ground truth first.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vlmkit.data.records import Record, read_records
from vlmkit.data.shapesworld.language import NUMBER_WORDS, RELATION_WORDS, Thing, clear_relation, relation_holds
from vlmkit.errors import InputError
from vlmkit.evaluation.scene_reader import ReadObject, read_scene
from vlmkit.models.dit import DiT
from vlmkit.tasks.imagine import MAX_IMAGES, ImagineSettings, generate_images

TASKS = ("single_object", "two_objects", "counting", "colors", "position", "colour_attribution")


@dataclass(frozen=True)
class GenEvalPrompt:
    """A prompt and what an image of it must show: objects as (shape, colour or None), all distinct;
    the exact object count (or None); a relation of the first object to the second (or None). ``render``
    is the held-out image (path inside the split) the prompt is a caption of: the real reference of the
    Frechet distance."""

    task: str
    prompt: str
    objects: tuple[tuple[str, str | None], ...]
    count: int | None = None
    relation: str | None = None
    render: str | None = None


def _things(record: Record) -> list[Thing]:
    return [
        Thing(o.extra["shape"], o.extra["color"], o.extra["size"], (o.box[0] + o.box[2]) / 2, (o.box[1] + o.box[3]) / 2)
        for o in record.objects or []
    ]


def _starting(record: Record, prefix: str) -> str | None:
    return next((c for c in record.captions or [] if c.startswith(prefix)), None)


def prompts_for(record: Record, margin: float) -> list[GenEvalPrompt]:
    """The GenEval prompts one record's captions give (none for a scene no task fits)."""
    things = _things(record)
    n, captions = len(things), record.captions or []
    if n == 0 or len(captions) < 2:
        return []
    shapes = tuple((t.shape, None) for t in things)
    render = None if record.image is None else str(record.image)
    found = []
    if n == 1:
        if caption := _starting(record, "a single "):
            found.append(GenEvalPrompt("single_object", caption, shapes, count=1, render=render))
        found.append(GenEvalPrompt("colors", captions[1], ((things[0].shape, things[0].color),), render=render))
    if n in (2, 3, 4) and (caption := _starting(record, f"{NUMBER_WORDS[n]} shapes: ")):
        found.append(GenEvalPrompt("two_objects" if n == 2 else "counting", caption, shapes, count=n, render=render))
    if n == 2:
        a, b = sorted(things, key=lambda t: (t.cx, t.cy))  # the canonical caption's order
        relation = clear_relation(a, b, margin)
        if relation is not None and f" {RELATION_WORDS[relation]} " in captions[0]:
            pair = ((a.shape, a.color), (b.shape, b.color))
            found.append(GenEvalPrompt("position", captions[0], pair, relation=relation, render=render))
        if a.color != b.color and a.shape != b.shape:
            pair = tuple((t.shape, t.color) for t in things)
            found.append(GenEvalPrompt("colour_attribution", captions[1], pair, render=render))
    return found


def geneval_prompts(folder: str | Path, per_task: int, unseen_only: bool = False) -> list[GenEvalPrompt]:
    """Up to ``per_task`` distinct prompts per task from a ShapesWorld split, in file order; with
    ``unseen_only`` just those naming a colour-shape pair training never showed (the split's ``held_out``
    pairs: the compositional split's colour tasks)."""
    folder = Path(folder)
    settings = (
        json.loads((folder / "shapesworld.json").read_text(encoding="utf-8"))
        if (folder / "shapesworld.json").exists()
        else None
    )
    if settings is None:
        raise InputError(f"{folder}: not a ShapesWorld split (no shapesworld.json)")
    config = settings["config"]
    margin = config["position_margin"] * config["image_size"]
    unseen = {(shape, colour) for colour, shape in config["held_out"]}
    chosen: dict[str, list[GenEvalPrompt]] = {task: [] for task in TASKS}
    seen: set[tuple[str, str]] = set()
    for record in read_records(folder).records:
        for prompt in prompts_for(record, margin):
            if unseen_only and not unseen & set(prompt.objects):
                continue
            if len(chosen[prompt.task]) < per_task and (prompt.task, prompt.prompt) not in seen:
                seen.add((prompt.task, prompt.prompt))
                chosen[prompt.task].append(prompt)
    return [p for task in TASKS for p in chosen[task]]


def satisfied(prompt: GenEvalPrompt, objects: Sequence[ReadObject], margin: float) -> bool:
    """Whether ``objects`` (read from one image) meet every requirement of ``prompt``; ``margin`` is the
    relation margin in that image's pixels."""
    if prompt.count is not None and len(objects) != prompt.count:
        return False
    for chosen in itertools.permutations(range(len(objects)), len(prompt.objects)):
        picked = [objects[i] for i in chosen]
        if not all(
            o.shape == s and (c is None or o.color == c) for o, (s, c) in zip(picked, prompt.objects, strict=True)
        ):
            continue
        if prompt.relation is None:
            return True
        (ax, ay), (bx, by) = picked[0].center, picked[1].center
        a, b = Thing("", "", "", ax, ay), Thing("", "", "", bx, by)
        if relation_holds(a, b, prompt.relation, margin):
            return True
    return False


def score(
    prompts: Sequence[GenEvalPrompt], images: Sequence[Sequence[Image.Image]], margin_share: float
) -> dict[str, float]:
    """Per task the share of images meeting every requirement, and ``overall`` (their mean); the relation
    margin is ``margin_share`` of the image side."""
    passed: dict[str, list[bool]] = {task: [] for task in TASKS}
    for prompt, group in zip(prompts, images, strict=True):
        for image in group:
            passed[prompt.task].append(satisfied(prompt, read_scene(image), margin_share * image.size[0]))
    scores = {task: float(np.mean(v)) for task, v in passed.items() if v}
    scores["overall"] = float(np.mean(list(scores.values()))) if scores else 0.0
    return scores


def reader_input(image: Image.Image, side: int) -> Image.Image:
    """An image as the reader reads it: resized (bicubic) to ``side``, the resolution it was validated at."""
    return image if image.size == (side, side) else image.convert("RGB").resize((side, side), Image.Resampling.BICUBIC)


def validate_reader(folder: str | Path, limit: int | None = None, through: int | None = None) -> dict[str, float]:
    """The reader on real renders of a ShapesWorld split against their exact ground truth.

    ``images``: share of images whose every object is read with the right colour, shape and size and
    nothing extra; ``objects``: share of ground-truth objects read right (colour and shape); ``count``:
    share of images with the right number of objects. ``through`` first squashes each render to that
    side and back (what a model trained at that size produces at best).
    """
    folder = Path(folder)
    exact = objects = total = counts = images = 0
    for record in read_records(folder).records:
        if limit is not None and images >= limit:
            break
        image = Image.open(folder / str(record.image)).convert("RGB")
        side = image.size[0]
        if through is not None:
            image = reader_input(reader_input(image, through), side)
        read = read_scene(image)
        truth = sorted((t.color, t.shape, t.size) for t in _things(record))
        got = sorted((o.color, o.shape, o.size) for o in read)
        exact += truth == got
        counts += len(truth) == len(got)
        remaining = [(o.color, o.shape) for o in read]
        for colour, shape, _ in truth:
            if (colour, shape) in remaining:
                remaining.remove((colour, shape))
                objects += 1
        total += len(truth)
        images += 1
    return {
        "images": exact / max(images, 1),
        "objects": objects / max(total, 1),
        "count": counts / max(images, 1),
        "n": images,
    }


def evaluate_model(
    model: DiT,
    folder: str | Path,
    per_task: int = 50,
    images_per_prompt: int = 4,
    settings: ImagineSettings | None = None,
    unseen_only: bool = False,
) -> tuple[dict[str, float], list[GenEvalPrompt], list[list[Image.Image]]]:
    """GenEval of a text-to-image model on a ShapesWorld split: (scores, prompts, images per prompt).

    Images are read at the split's resolution (a model trained smaller is resized up, bicubic, as
    ``validate_reader(through=...)`` measures).
    """
    prompts = geneval_prompts(folder, per_task, unseen_only)
    config = json.loads((Path(folder) / "shapesworld.json").read_text(encoding="utf-8"))["config"]
    side = config["image_size"]
    per_call = max(1, MAX_IMAGES // images_per_prompt)
    images: list[list[Image.Image]] = []
    for start in range(0, len(prompts), per_call):
        chunk = [p.prompt for p in prompts[start : start + per_call]]
        pixels = generate_images(model, chunk, images_per_prompt, settings)
        pictures = [reader_input(Image.fromarray(p.permute(1, 2, 0).numpy()), side) for p in pixels]
        images += [pictures[k : k + images_per_prompt] for k in range(0, len(pictures), images_per_prompt)]
    return score(prompts, images, config["position_margin"] / 2), prompts, images
