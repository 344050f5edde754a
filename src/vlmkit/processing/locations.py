"""Boxes and masks as text: location and segmentation tokens, and the one parser of object-level outputs.

A VLM that grounds words writes its boxes as tokens. Two conventions are in use:

- **PaliGemma** (``PALIGEMMA``): an object is ``<locY0><locX0><locY1><locX1> label`` (four of
  ``<loc0000>``..``<loc1023>``, **y before x**), optionally followed after the box by 16 mask tokens
  ``<seg000>``..``<seg127>`` (``<loc..>x4 <seg..>x16 label``); objects are joined by `` ; ``. A normalised
  coordinate ``v`` in [0, 1] is bin ``round(v * 1023)``, clipped to 0..1023, and a bin reads back as
  ``bin / 1023``. Sources: big_vision ``pp/proj/paligemma/segmentation.py`` (``round(bbox * 1023)``,
  ``clip_by_value(.., 0, 1023)``, the suffix ``loc_string + mask_string``) and
  ``evaluators/proj/paligemma/transfers/segmentation.py`` (``tokens[:, :4] / 1023``; the 64x64 mask
  decoded from the 16 codes is resized into the box); transformers' ``processing_paligemma.py`` names the
  1024 + 128 extra tokens the same way.
- **Florence-2** (``FLORENCE``): ``label<loc_X0><loc_Y0><loc_X1><loc_Y1>`` (x before y, ``<loc_0>``..
  ``<loc_999>``), several boxes of one label in a row, objects simply concatenated. A pixel coordinate
  ``p`` of an image ``W`` wide is bin ``floor(p / (W / 1000))`` clipped to 0..999 and reads back as the
  bin's centre ``(bin + 0.5) * W / 1000`` (transformers' ``Florence2PostProcessor.quantize`` /
  ``dequantize``).

``parse_objects`` reads either into ``ParsedObject`` s (label, box in pixels clipped to the image, the 16
mask codes when present). A model's output is untrusted text: a malformed or truncated object is kept
as an ``unparsed`` fragment next to the objects that did parse, never an exception. Whitespace between
tokens is ignored, since WordPiece decoders put spaces between every token.

Masks go into and out of their 16 codes through a 64x64 crop of the object's box (``processing.masks``:
``mask_crop``, ``paste_mask``) and a VQ-VAE of those crops (``vlmkit.models.mask_tokenizer``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tokenizers import AddedToken

from vlmkit.errors import InputError
from vlmkit.processing.text import TextTokenizer

LOC_BINS = 1024
SEG_CODES = 128
SEG_PER_MASK = 16
OBJECT_SEPARATOR = " ; "
LOCATION_TOKENS = tuple(f"<loc{i:04d}>" for i in range(LOC_BINS))
SEGMENT_TOKENS = tuple(f"<seg{i:03d}>" for i in range(SEG_CODES))
FLORENCE_BINS = 1000
FLORENCE_TOKENS = tuple(f"<loc_{i}>" for i in range(FLORENCE_BINS))

Box = tuple[float, float, float, float]  # [x0, y0, x1, y1] in pixels
Convention = Literal["paligemma", "florence"]
PALIGEMMA: Convention = "paligemma"
FLORENCE: Convention = "florence"

_LOC = re.compile(r"<loc(\d{4})>")
_SEG = re.compile(r"<seg(\d{3})>")
_TOKEN = re.compile(r"<(?:loc|seg)\d+>")
_FLORENCE_OBJECT = re.compile(r"([^<]*)((?:\s*<loc_\d+>)+)")
_FLORENCE_LOC = re.compile(r"<loc_(\d+)>")


# ------------------------------------------------------------------------------------------ writing


def location_bins(box: Sequence[float], width: int, height: int, convention: Convention = PALIGEMMA) -> list[int]:
    """The four bins of a pixel box ``[x0, y0, x1, y1]``, in the convention's token order."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if convention == PALIGEMMA:
        top = LOC_BINS - 1
        return [min(max(round(v * top), 0), top) for v in (y0 / height, x0 / width, y1 / height, x1 / width)]
    w_bin, h_bin = width / FLORENCE_BINS, height / FLORENCE_BINS
    return [
        min(max(math.floor(v / step), 0), FLORENCE_BINS - 1)
        for v, step in ((x0, w_bin), (y0, h_bin), (x1, w_bin), (y1, h_bin))
    ]


def box_tokens(box: Sequence[float], width: int, height: int, convention: Convention = PALIGEMMA) -> str:
    """A pixel box as its four location tokens (``<loc0012>...`` or ``<loc_12>...``)."""
    names = LOCATION_TOKENS if convention == PALIGEMMA else FLORENCE_TOKENS
    return "".join(names[b] for b in location_bins(box, width, height, convention))


def mask_tokens(codes: Sequence[int]) -> str:
    """16 mask codes (0..127) as ``<seg..>`` tokens."""
    codes = [int(c) for c in codes]
    if len(codes) != SEG_PER_MASK or not all(0 <= c < SEG_CODES for c in codes):
        raise InputError(f"mask codes: expected {SEG_PER_MASK} codes in 0..{SEG_CODES - 1}, got {codes}")
    return "".join(SEGMENT_TOKENS[c] for c in codes)


def format_object(
    label: str,
    box: Sequence[float],
    width: int,
    height: int,
    codes: Sequence[int] | None = None,
    convention: Convention = PALIGEMMA,
) -> str:
    """One object as a model writes it: ``<loc>x4 [<seg>x16 ]label`` (PaliGemma) or ``label<loc_>x4``."""
    if convention == FLORENCE:
        if codes is not None:
            raise InputError("mask codes: the Florence-2 convention has no mask tokens")
        return f"{label}{box_tokens(box, width, height, FLORENCE)}"
    masks = "" if codes is None else " " + mask_tokens(codes)
    return f"{box_tokens(box, width, height)}{masks} {label}"


def format_objects(objects: Sequence[str], convention: Convention = PALIGEMMA) -> str:
    """Formatted objects joined as the convention does: `` ; `` (PaliGemma) or nothing (Florence-2)."""
    return (OBJECT_SEPARATOR if convention == PALIGEMMA else "").join(objects)


# ------------------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class ParsedObject:
    """One object read from a model's output: ``box`` is ``[x0, y0, x1, y1]`` in pixels, inside the image;
    ``codes`` are its 16 mask codes, or None when the output gave none."""

    label: str
    box: Box
    codes: tuple[int, ...] | None = None


@dataclass(frozen=True)
class ParsedOutput:
    """What could be read from ``text``: the objects, and the fragments that were not objects (a truncated
    last object, a box with three coordinates, x1 < x0, ...)."""

    objects: list[ParsedObject]
    text: str
    unparsed: tuple[str, ...] = ()


def parse_objects(text: str, width: int, height: int, convention: Convention = PALIGEMMA) -> ParsedOutput:
    """Objects in a model's output ``text`` about a ``width`` x ``height`` image (see the module docstring)."""
    if width < 1 or height < 1:
        raise InputError(f"image size: expected a positive width and height, got {width} x {height}")
    if convention == FLORENCE:
        return _parse_florence(text, width, height)
    objects: list[ParsedObject] = []
    unparsed: list[str] = []
    for fragment in text.split(";"):
        if not fragment.strip():
            continue
        parsed = _parse_paligemma_object(fragment, width, height)
        if parsed is None:
            unparsed.append(fragment.strip())
        else:
            objects.append(parsed)
    return ParsedOutput(objects, text, tuple(unparsed))


def _parse_paligemma_object(fragment: str, width: int, height: int) -> ParsedObject | None:
    """``<loc>x4 [<seg>x16] label`` with any whitespace between tokens, or None."""
    rest = fragment.strip()
    bins: list[int] = []
    while len(bins) < 4 and (match := _LOC.match(rest)):
        bins.append(int(match.group(1)))
        rest = rest[match.end() :].lstrip()
    if len(bins) < 4 or max(bins) >= LOC_BINS:
        return None
    codes: list[int] = []
    while len(codes) < SEG_PER_MASK and (match := _SEG.match(rest)):
        codes.append(int(match.group(1)))
        rest = rest[match.end() :].lstrip()
    if codes and (len(codes) < SEG_PER_MASK or max(codes) >= SEG_CODES):
        return None
    label = " ".join(_TOKEN.sub(" ", rest).split())
    top = LOC_BINS - 1
    y0, x0, y1, x1 = (b / top for b in bins)
    box = _clipped((x0 * width, y0 * height, x1 * width, y1 * height), width, height)
    return None if box is None else ParsedObject(label, box, tuple(codes) if codes else None)


def _parse_florence(text: str, width: int, height: int) -> ParsedOutput:
    objects: list[ParsedObject] = []
    unparsed: list[str] = []
    end = 0
    for match in _FLORENCE_OBJECT.finditer(text):
        leftover = text[end : match.start()].strip()
        if leftover:
            unparsed.append(leftover)
        end = match.end()
        label = " ".join(match.group(1).replace(";", " ").split())
        bins = [int(b) for b in _FLORENCE_LOC.findall(match.group(2))]
        for start in range(0, len(bins) - len(bins) % 4, 4):
            bx0, by0, bx1, by1 = bins[start : start + 4]
            w_bin, h_bin = width / FLORENCE_BINS, height / FLORENCE_BINS
            raw = ((bx0 + 0.5) * w_bin, (by0 + 0.5) * h_bin, (bx1 + 0.5) * w_bin, (by1 + 0.5) * h_bin)
            box = _clipped(raw, width, height) if max(bins[start : start + 4]) < FLORENCE_BINS else None
            if box is None:
                unparsed.append(match.group(0).strip())
            else:
                objects.append(ParsedObject(label, box))
        if len(bins) % 4:
            unparsed.append(match.group(0).strip())
    if text[end:].strip():
        unparsed.append(text[end:].strip())
    return ParsedOutput(objects, text, tuple(unparsed))


def _clipped(box: Box, width: int, height: int) -> Box | None:
    """``box`` clipped to the image, or None when its corners are the wrong way round."""
    x0, y0, x1, y1 = box
    if x1 < x0 or y1 < y0:
        return None
    return (min(max(x0, 0.0), width), min(max(y0, 0.0), height), min(max(x1, 0.0), width), min(max(y1, 0.0), height))


# ------------------------------------------------------------------------------------------ tokenizers


def add_location_tokens(tokenizer: TextTokenizer, segments: bool = True) -> int:
    """Add ``<loc0000>``..``<loc1023>`` (and ``<seg000>``..``<seg127>``) to ``tokenizer`` as whole tokens
    that decoding keeps (not special: ``skip_special_tokens`` must not drop a box). Returns how many were
    new; the model's embedding must then grow to ``tokenizer.vocab_size`` rows."""
    names = [*LOCATION_TOKENS, *(SEGMENT_TOKENS if segments else ())]
    missing = [n for n in names if tokenizer.tokenizer.token_to_id(n) is None]
    return tokenizer.tokenizer.add_tokens([AddedToken(n, normalized=False) for n in missing])


def has_location_tokens(tokenizer: TextTokenizer | None) -> bool:
    """Whether ``tokenizer`` writes boxes as single PaliGemma location tokens."""
    vocab = tokenizer.tokenizer if tokenizer is not None else None
    return vocab is not None and all(
        vocab.token_to_id(n) is not None for n in (LOCATION_TOKENS[0], LOCATION_TOKENS[-1])
    )


def location_token_ids(tokenizer: TextTokenizer) -> list[int]:
    """The ids of ``<loc0000>``..``<loc1023>`` in bin order (``has_location_tokens`` must hold)."""
    return [tokenizer.tokenizer.token_to_id(name) for name in LOCATION_TOKENS]


def has_segment_tokens(tokenizer: TextTokenizer | None) -> bool:
    vocab = tokenizer.tokenizer if tokenizer is not None else None
    return vocab is not None and all(vocab.token_to_id(n) is not None for n in (SEGMENT_TOKENS[0], SEGMENT_TOKENS[-1]))


# ------------------------------------------------------------------------------------------ prompts

ALL_OBJECTS_PROMPT = "detect every object"


def detect_prompt(labels: str | Sequence[str]) -> str:
    """``detect a ; b`` (PaliGemma's detection prompt); a string is taken as already ``;``-separated."""
    return f"detect {_joined(labels)}"


def segment_prompt(labels: str | Sequence[str]) -> str:
    """``segment a ; b`` (PaliGemma's segmentation prompt)."""
    return f"segment {_joined(labels)}"


def _joined(labels: str | Sequence[str]) -> str:
    items = [labels] if isinstance(labels, str) else list(labels)
    parts = [" ".join(p.split()) for item in items for p in item.split(";")]
    parts = [p for p in parts if p]
    if not parts:
        raise InputError("labels: expected at least one label or expression, got none")
    return OBJECT_SEPARATOR.join(parts)
