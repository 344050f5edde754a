"""Every annotation is checked against the rendered pixels and stored objects, with a parser written
here independently of the generator's language code."""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import pytest
from PIL import Image

from vlmkit.data.shapesworld import COLORS, SHAPES, SIZES, ShapesWorldConfig, make_example, rle_decode

CONFIG = ShapesWorldConfig()
MARGIN = CONFIG.position_margin * CONFIG.image_size
RELATIONS = {"to the left of": "left", "to the right of": "right", "above": "above", "below": "below"}


def _examples(split: str, n: int, config: ShapesWorldConfig = CONFIG) -> list[tuple[np.ndarray, dict[str, Any]]]:
    out = []
    for index in range(n):
        png, record = make_example(config, 0, split, index)
        out.append((np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), record))
    return out


@pytest.fixture(scope="module")
def examples() -> list[tuple[np.ndarray, dict[str, Any]]]:
    return _examples("train", 40) + _examples("compositional", 10)


def _singular(word: str) -> str:
    if word == "crosses":
        return "cross"
    return word[:-1] if word.endswith("s") and word[:-1] in SHAPES else word


def _match(phrase: str, objects: list[dict]) -> list[int]:
    """Indices of objects having every attribute word of ``phrase`` ("large red circle", "red objects")."""
    words = [_singular(w) for w in phrase.split() if w not in ("the", "a", "an", "object", "objects")]
    for word in words:
        assert word in SHAPES or word in COLORS or word in SIZES, f"unknown word {word!r} in {phrase!r}"
    return [i for i, o in enumerate(objects) if all(w in (o["shape"], o["color"], o["size"]) for w in words)]


def _center(obj: dict) -> tuple[float, float]:
    x0, y0, x1, y1 = obj["box"]
    return (x0 + x1) / 2, (y0 + y1) / 2


def _holds(a: dict, b: dict, relation: str, margin: float) -> bool:
    (ax, ay), (bx, by) = _center(a), _center(b)
    return {"left": ax < bx - margin, "right": ax > bx + margin, "above": ay < by - margin, "below": ay > by + margin}[
        relation
    ]


def _the(phrase: str, objects: list[dict]) -> dict:
    found = _match(phrase, objects)
    assert len(found) == 1, f"{phrase!r} is not unique: {found}"
    return objects[found[0]]


def test_boxes_are_tight_and_masks_disjoint(examples) -> None:
    for pixels, record in examples:
        owner = np.zeros(pixels.shape[:2], int)
        for obj in record["objects"]:
            mask = rle_decode(obj["mask"])
            assert mask.shape == pixels.shape[:2]
            ys, xs = np.nonzero(mask)
            assert obj["box"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            assert obj["area"] == mask.sum()
            owner += mask
        assert owner.max() == 1


def test_mask_pixels_have_the_object_colour(examples) -> None:
    for pixels, record in examples:
        for obj in record["objects"]:
            mask = rle_decode(obj["mask"])
            error = np.abs(pixels[mask].astype(int) - np.array(obj["rgb"])).max(axis=1)
            assert np.median(error) <= 1, obj["label"]
            named = np.abs(np.array(obj["rgb"]) - np.array(COLORS[obj["color"]])).max()
            assert named <= CONFIG.color_jitter


def test_images_are_antialiased(examples) -> None:
    pixels, record = next((p, r) for p, r in examples if r["meta"]["background"] == "plain")
    flat_colours = {tuple(o["rgb"]) for o in record["objects"]} | {tuple(pixels[0, 0])}
    assert len({tuple(p) for p in pixels.reshape(-1, 3)} - flat_colours) > 10


def test_answers_are_true(examples) -> None:
    seen_types = set()
    for _, record in examples:
        objects = record["objects"]
        for qa in record["qa"]:
            q, answer, kind = qa["question"], qa["answer"], qa["type"]
            seen_types.add(kind)
            assert answer in qa["choices"] and 2 <= len(qa["choices"]) <= 5
            assert len(set(qa["choices"])) == len(qa["choices"])
            if m := re.fullmatch(r"how many (.+) are there\?", q):
                assert answer == str(len(_match(m[1], objects))), q
            elif m := re.fullmatch(r"is there an? (.+)\?", q):
                assert answer == ("yes" if _match(m[1], objects) else "no"), q
            elif m := re.fullmatch(r"what (color|shape|size) is the (.+)\?", q):
                assert _the(m[2], objects)[m[1]] == answer, q
            elif m := re.fullmatch(r"is the (.+) (bigger|smaller) than the (.+)\?", q):
                a, b = (list(SIZES).index(_the(p, objects)["size"]) for p in (m[1], m[3]))
                assert a != b and answer == ("yes" if (a > b) == (m[2] == "bigger") else "no"), q
            elif m := re.fullmatch(r"is the (.+) (to the left or to the right of|above or below) the (.+)\?", q):
                assert _holds(_the(m[1], objects), _the(m[3], objects), answer, MARGIN), q
            elif m := re.fullmatch(r"is the (.+) (to the left of|to the right of|above|below) the (.+)\?", q):
                a, b, relation = _the(m[1], objects), _the(m[3], objects), RELATIONS[m[2]]
                opposite = {"left": "right", "right": "left", "above": "below", "below": "above"}[relation]
                assert _holds(a, b, relation if answer == "yes" else opposite, MARGIN), q
            else:
                pytest.fail(f"unparsed question {q!r}")
    assert seen_types == {"color", "shape", "size", "count", "exist", "position"}


def test_exist_answers_are_balanced(examples) -> None:
    answers = [qa["answer"] for _, r in examples for qa in r["qa"] if qa["type"] == "exist"]
    assert 0.3 < answers.count("yes") / len(answers) < 0.7


def test_referring_expressions_pick_out_their_object(examples) -> None:
    relational = 0
    for _, record in examples:
        objects = record["objects"]
        for index, obj in enumerate(objects):
            for refexp in obj["refexp"]:
                m = re.fullmatch(r"the (.+?) (to the left of|to the right of|above|below) the (.+)", refexp)
                if m is None:
                    assert _match(refexp, objects) == [index], refexp
                    continue
                relational += 1
                landmark = _the(m[3], objects)
                relation = RELATIONS[m[2]]
                assert _holds(obj, landmark, relation, MARGIN), refexp
                rivals = [i for i in _match(m[1], objects) if objects[i] is not landmark and i != index]
                assert index in _match(m[1], objects)
                assert not any(_holds(objects[i], landmark, relation, 0.0) for i in rivals), refexp
    assert relational > 0


def test_captions_name_every_object(examples) -> None:
    for _, record in examples:
        canonical = record["captions"][0]
        phrases = [f"{o['size']} {o['color']} {o['shape']}" for o in record["objects"]]
        for phrase in set(phrases):
            assert len(re.findall(rf"\ban? {phrase}\b", canonical)) == phrases.count(phrase), canonical
        assert all(len(c.split()) <= 40 for c in record["captions"])
        assert len(record["captions"]) >= 3 and len(set(record["captions"])) == len(record["captions"])


def test_labels_describe_the_largest_object(examples) -> None:
    for _, record in examples:
        areas = [o["area"] for o in record["objects"]]
        top = record["objects"][int(np.argmax(areas))]
        assert record["labels"] == {
            "shape": top["shape"],
            "color": top["color"],
            "color_shape": f"{top['color']} {top['shape']}",
        }


def test_the_largest_object_is_clearly_the_largest(examples) -> None:
    """The label must be visible to a person: the subject is of a bigger size class than every other
    object and shows at least 1.5x the pixels of any of them, even when partly hidden."""
    order = list(SIZES)
    for _, record in examples:
        objects = sorted(record["objects"], key=lambda o: -o["area"])
        for other in objects[1:]:
            assert order.index(objects[0]["size"]) > order.index(other["size"]), record["objects"]
            assert objects[0]["area"] >= 1.5 * other["area"], record["objects"]


def test_held_out_pairs_only_in_compositional(examples) -> None:
    held = {f"{c} {s}" for c, s in CONFIG.held_out}
    for _, record in examples:
        labels = {o["label"] for o in record["objects"]}
        if record["meta"]["split"] == "compositional":
            assert record["labels"]["color_shape"] in held
            continue
        assert not labels & held
        text = " ".join([*record["captions"], *(qa["question"] for qa in record["qa"])])
        for pair in held:
            color, shape = pair.split()
            assert not re.search(rf"\b{color} ({shape}|{shape}s|{shape}es)\b", text), pair


def test_single_object_mode_and_other_sizes() -> None:
    config = ShapesWorldConfig(image_size=96, max_objects=1, background="textured")
    for pixels, record in _examples("val", 4, config):
        assert pixels.shape == (96, 96, 3) and len(record["objects"]) == 1
        assert record["captions"][0] == "a " + " ".join(record["objects"][0][k] for k in ("size", "color", "shape"))
