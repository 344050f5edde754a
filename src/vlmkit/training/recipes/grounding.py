"""Grounding in the ``instruct`` recipe: location and mask tokens added to the VLM, conversations about a
record's objects (``data.grounding``), mask codes from a mask tokenizer, and held-out grounding scores.

Location tokens are added to the tokenizer and the decoder grows a row for each (``training.vocabulary``);
the exported model keeps them, which is what makes ``vlmkit eval`` run the grounding protocol on it. A
record's masks are encoded once, on first use, by the frozen mask tokenizer (``processing.masks.mask_crop``
then ``encode``), so segmentation turns cost no more than detection ones afterwards.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from vlmkit.data.grounding import grounding_turns
from vlmkit.data.records import Record, RecordDataset
from vlmkit.data.shapesworld.masks import rle_decode
from vlmkit.errors import ConfigError, InputError
from vlmkit.evaluation.detection import grounding_tasks
from vlmkit.models import VisionLanguageModel
from vlmkit.processing.locations import add_location_tokens, location_token_ids
from vlmkit.processing.masks import box_pixels, mask_crop
from vlmkit.tasks.segment import MaskCodec
from vlmkit.training.vocabulary import grow_vocabulary, order_rows

Messages = list[dict[str, str]]


LOCATION_INITS = ("mean", "ordered")
"""How new location rows start: at the vocabulary's mean (``grow_vocabulary``) or on a smooth curve of the
bin value (``order_rows``: neighbouring bins share their start, so a near miss is partly right)."""


def enable_grounding(
    model: VisionLanguageModel,
    seed: int,
    location_init: str = "mean",
    location_code: bool = False,
    column_scale: float = 1.0,
) -> int:
    """Give ``model`` the location and mask tokens (tokenizer and decoder rows); returns tokens added.

    Rows of tokens the model already had are left as they are, whatever ``location_init`` says.
    ``location_code`` adds their embeddings to the image tokens (``models.location_code``), which needs the
    1024 location tokens in order on consecutive ids (as vlmkit adds them, and as PaliGemma has them), with
    ``column_scale`` as its column weight; a model that has a code already keeps its weight, and another
    ``column_scale`` is refused rather than silently changing what its image tokens carry.
    """
    if model.tokenizer is None:
        raise InputError("--grounding-share: the VLM has no tokenizer to add location tokens to")
    if location_init not in LOCATION_INITS:
        raise ConfigError(f"location_init: expected one of {', '.join(LOCATION_INITS)}, got {location_init!r}")
    old = model.decoder.config.vocab_size
    add_location_tokens(model.tokenizer)
    added = grow_vocabulary(model.decoder, model.tokenizer.vocab_size, seed)
    bins = torch.tensor(location_token_ids(model.tokenizer))
    if location_init == "ordered" and bool((bins >= old).all()):
        order_rows(model.decoder, bins, old, seed)
    if location_code:
        if not torch.equal(bins - bins[0], torch.arange(len(bins))):
            raise ConfigError("location_code: the tokenizer's <loc0000>..<loc1023> are not on consecutive ids")
        had = model.config.location_code_token is not None
        if had and model.config.location_code_column_scale != column_scale:
            raise ConfigError(
                f"location_code_column_scale: the model's code has {model.config.location_code_column_scale}, "
                f"got {column_scale}; pass the model's own to continue it"
            )
        model.config.location_code_token = int(bins[0])
        model.config.location_code_column_scale = column_scale
        model.config.validate("location_code")
    return added


class MaskCodes:
    """Each record's per-object mask codes (None for an object without an RLE mask), encoded once."""

    def __init__(self, codec: MaskCodec | None) -> None:
        self.codec = codec
        self.cache: dict[int, list[list[int] | None]] = {}

    def __call__(self, record: Record) -> list[list[int] | None] | None:
        if self.codec is None:
            return None
        key = id(record)
        if key not in self.cache:
            objects = record.objects or []
            masked = [i for i, o in enumerate(objects) if isinstance(o.mask, dict) and _has_area(o.box, o.mask)]
            codes: list[list[int] | None] = [None] * len(objects)
            if masked:
                crops = torch.stack(
                    [torch.from_numpy(mask_crop(rle_decode(objects[i].mask), objects[i].box)) for i in masked]
                )
                with torch.inference_mode():
                    encoded = self.codec.encode(crops).tolist()
                for i, row in zip(masked, encoded, strict=True):
                    codes[i] = row
            self.cache[key] = codes
        return self.cache[key]


def _has_area(box: list[float], rle: dict[str, Any]) -> bool:
    """Whether ``box`` keeps at least a pixel inside its mask's image (a crop of nothing has no codes)."""
    x0, y0, x1, y1 = box_pixels(box, *rle.get("size", (0, 0)))
    return x1 > x0 and y1 > y0


def grounding_messages(record: Record, rng: random.Random, turns: int, codes: MaskCodes) -> Messages:
    """A conversation of ``turns`` grounding turns about ``record`` ([] when it has nothing to locate)."""
    messages: Messages = []
    for prompt, answer in grounding_turns(record, rng, turns, codes(record)):
        messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    return messages


def grounding_evaluation(
    eval_data: str | None, eval_images: int, codec: MaskCodec | None, with_vqa: Callable[[nn.Module], Any] | None
) -> Callable[[nn.Module], dict[str, float]] | None:
    """Held-out all-objects AP50 and AP, referring accuracy (and mask mIoU with a codec), plus the VQA
    scores of ``with_vqa`` when the run also trains questions."""
    if not eval_data:
        return None
    dataset = RecordDataset(eval_data)
    records = [r for r in dataset.records if r.objects][:eval_images]

    def evaluate(model: nn.Module) -> dict[str, float]:
        tasks = grounding_tasks(model, dataset, records, batch_size=32, mask_tokenizer=codec)
        scores = {**(with_vqa(model) if with_vqa else {})}
        detection = tasks["detection_all"]()
        scores.update({"all_objects_ap50": detection["ap50"], "all_objects_ap": detection["ap"]})
        referring = tasks["referring"]()
        if "accuracy" in referring:
            scores["referring_accuracy"] = referring["accuracy"]
        if "segmentation" in tasks:
            segmentation = tasks["segmentation"]()
            if "miou" in segmentation:
                scores["segmentation_miou"] = segmentation["miou"]
        return scores

    return evaluate
