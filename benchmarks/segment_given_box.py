"""Are masks or boxes the limit of a grounding VLM's segmentation? Each referring expression's mask, given the
true box.

For the referring expressions ``vlmkit eval`` asks of the first ``--limit`` scenes (one per object), the
model is asked ``segment EXPRESSION`` as ``vlmkit eval`` asks it (``tasks.segment``), its answer is forced to
start with the referent's true box (the four location tokens the training answer starts with), and it writes
the 16 ``<seg>`` codes greedily. The codes are decoded through the mask tokenizer into the true box and
scored against the exact masks (mIoU, cIoU; ``evaluation.detection.mask_scores``). The second row is the
ceiling: the exact mask's own codes (``train instruct``'s encoding, ``training.recipes.grounding.MaskCodes``)
decoded the same way. A model near the ceiling segments well and its low segmentation score comes from its
boxes.

    .venv/bin/python benchmarks/segment_given_box.py RUN/model RUN/mask-vae/model sw10k/test --limit 200
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from vlmkit.checkpoints import from_pretrained
from vlmkit.data.grounding import record_size
from vlmkit.data.records import ObjectAnnotation, Record, RecordDataset
from vlmkit.data.shapesworld.masks import rle_decode
from vlmkit.errors import InputError
from vlmkit.evaluation.detection import MaskScores, mask_scores, referring_set
from vlmkit.models import VisionLanguageModel
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.chat import ChatEncoder, with_image
from vlmkit.processing.images import load_image
from vlmkit.processing.jinja_chat import JinjaChatEncoder
from vlmkit.processing.locations import (
    SEG_PER_MASK,
    SEGMENT_TOKENS,
    ParsedObject,
    box_tokens,
    format_object,
    has_segment_tokens,
    parse_objects,
    segment_prompt,
)
from vlmkit.tasks.chat import chat_encoder, respond
from vlmkit.tasks.ground import GroundedObject, Grounding, check_grounding
from vlmkit.tasks.segment import MaskCodec, load_mask_codec, with_masks
from vlmkit.training.recipes.grounding import MaskCodes


@dataclass(frozen=True)
class Referent:
    """One expression to segment: its scene's image, the object it names, the image's (width, height)."""

    image: Image.Image
    record: Record
    index: int  # the object's position in ``record.objects`` (``MaskCodes`` gives codes in that order)
    expression: str
    size: tuple[int, int]

    @property
    def target(self) -> ObjectAnnotation:
        return (self.record.objects or [])[self.index]


def referents(dataset: RecordDataset, limit: int) -> list[Referent]:
    """The expressions ``vlmkit eval --limit`` asks of the first ``limit`` scenes (``referring_set``), those
    whose object has an RLE mask."""
    scenes = [r for r in dataset.records[:limit] if r.objects and record_size(r) is not None]
    images = {i: load_image(dataset.image_path(r)) for i, r in enumerate(scenes)}
    return [
        Referent(images[i], scenes[i], j, text, record_size(scenes[i]))  # type: ignore[arg-type]
        for i, j, text in referring_set(scenes)
        if isinstance((scenes[i].objects or [])[j].mask, dict)
    ]


def forced_prompt(model: VisionLanguageModel, encoder: ChatEncoder | JinjaChatEncoder, referent: Referent) -> list[int]:
    """The segmentation prompt's ids (``ground_many``'s encoding) followed by the training answer's ids up to
    its first mask code: the true box's location tokens and whatever the template writes around them, so the
    model continues exactly where a trained answer has its codes."""
    question = [{"role": "user", "content": with_image(segment_prompt(referent.expression))}]
    prompt = encoder.encode(question, add_generation_prompt=True).input_ids
    answer = format_object(referent.expression, referent.target.box, *referent.size, [0] * SEG_PER_MASK)
    full = encoder.encode([*question, {"role": "assistant", "content": answer}]).input_ids
    first_code = model.tokenizer.tokenizer.token_to_id(SEGMENT_TOKENS[0])  # type: ignore[union-attr]
    if full[: len(prompt)] != prompt or first_code not in full[len(prompt) :]:
        raise InputError("the chat template does not write an answer after the prompt; cannot force its box")
    return full[: full.index(first_code, len(prompt))]


def model_codes(model: VisionLanguageModel, items: Sequence[Referent], batch_size: int) -> list[ParsedObject]:
    """Each referent with the 16 codes the model writes after the forced true box (no codes: it wrote fewer)."""
    encoder, config = chat_encoder(model), GenerationConfig(max_new_tokens=SEG_PER_MASK)
    objects = []
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        answers = respond(model, [forced_prompt(model, encoder, r) for r in batch], [r.image for r in batch], config)
        for referent, answer in zip(batch, answers, strict=True):
            width, height = referent.size
            parsed = parse_objects(f"{box_tokens(referent.target.box, width, height)} {answer}", width, height)
            codes = parsed.objects[0].codes if parsed.objects else None
            objects.append(ParsedObject(referent.expression, tuple(referent.target.box), codes))
    return objects


def true_codes(codec: MaskCodec, items: Sequence[Referent]) -> list[ParsedObject]:
    """Each referent with its exact mask's codes, encoded as ``train instruct`` encodes its targets."""
    encode = MaskCodes(codec)
    objects = []
    for referent in items:
        codes = encode(referent.record)[referent.index]  # type: ignore[index]
        objects.append(
            ParsedObject(referent.expression, tuple(referent.target.box), None if codes is None else tuple(codes))
        )
    return objects


def scores(codec: MaskCodec, items: Sequence[Referent], objects: Sequence[ParsedObject]) -> MaskScores:
    """mIoU and cIoU of the codes decoded into their (true) boxes, as ``tasks.segment`` pastes a model's masks."""
    predicted, truth = [], []
    for referent, parsed in zip(items, objects, strict=True):
        grounding = Grounding([GroundedObject(parsed.label, parsed.box)], "", (), referent.size)
        predicted.append(with_masks([parsed], grounding, codec).objects[0].mask)
        truth.append(rle_decode(referent.target.mask))  # type: ignore[arg-type]
    return mask_scores(predicted, truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a grounding VLM (`train instruct --grounding-share`) with mask tokens")
    parser.add_argument("mask_tokenizer", help="its mask tokenizer (`vlmkit train mask-vae`)")
    parser.add_argument("data", help="a ShapesWorld split folder (objects with refexp and RLE masks)")
    parser.add_argument("--limit", type=int, default=200, help="the first N scenes")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    model = from_pretrained(args.model).eval()
    check_grounding(model)
    if not has_segment_tokens(model.tokenizer):
        raise SystemExit(f"{args.model}: the tokenizer has no mask tokens (<seg000>..<seg127>); it cannot segment")
    codec = load_mask_codec(args.mask_tokenizer)
    items = referents(RecordDataset(args.data), args.limit)
    if not items:
        raise SystemExit(f"{args.data}: no object with a referring expression and an RLE mask")
    print(f"{'codes, box':<24} {'mIoU':>6} {'cIoU':>6} {'expressions':>11} {'CPU s':>6}")
    rows = {
        "model's codes, true box": lambda: model_codes(model, items, args.batch_size),
        "true codes, true box": lambda: true_codes(codec, items),
    }
    for name, codes in rows.items():
        start = time.process_time()
        result = scores(codec, items, codes())
        print(f"{name:<24} {result.miou:6.3f} {result.ciou:6.3f} {result.count:11d} {time.process_time() - start:6.0f}")


if __name__ == "__main__":
    main()
