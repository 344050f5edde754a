"""The "paligemma" chat template gives the ids, token types and labels of transformers' PaliGemmaProcessor.

The layout is ``<image>`` x N, ``<bos>``, the prefix, ``\\n``; then the suffix and ``<eos>`` (types 1,
the only labelled tokens). Both sides read the same tiny tokenizer, written by the processor itself.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from paligemma_kit import save_tiny_processor
from vlmkit.processing.chat import IGNORE_INDEX, ChatEncoder, template_named, with_image
from vlmkit.processing.text import TextTokenizer

TOKENS_PER_IMAGE = 16  # the kit's 32 px images in 8 px patches


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    directory = tmp_path_factory.mktemp("paligemma_processor")
    processor = save_tiny_processor(directory)
    tokenizer = TextTokenizer.from_hf_dir(directory)
    image_token = tokenizer.tokenizer.token_to_id("<image>")
    eos = tokenizer.tokenizer.token_to_id("<eos>")
    encoder = ChatEncoder(tokenizer, template_named("paligemma"), eos, image_token, TOKENS_PER_IMAGE)
    return processor, encoder


def _processor(processor, text: str, suffix: str | None, images: int) -> dict[str, list[int]]:
    pixels = [[np.zeros((40, 40, 3), dtype=np.uint8)] * images]
    out = processor(images=pixels, text=[text], suffix=None if suffix is None else [suffix])
    return {key: np.asarray(out[key])[0].tolist() for key in ("input_ids", "token_type_ids", "labels")}


def _ours(encoder: ChatEncoder, text: str, suffix: str | None) -> dict[str, list[int]]:
    messages = [{"role": "user", "content": text}]
    if suffix is not None:
        messages.append({"role": "assistant", "content": suffix})
    encoded = encoder.encode(messages, add_generation_prompt=suffix is None)
    return {"input_ids": encoded.input_ids, "token_type_ids": encoded.token_type_ids, "labels": encoded.labels}


@pytest.mark.parametrize(
    ("text", "suffix", "images"),
    [
        ("<image>detect star ; circle", "red circle", 1),
        ("<image>caption en", None, 1),
        ("<image><image>segment the star", "blue", 2),
    ],
    ids=["suffix", "prompt_only", "two_images"],
)
def test_layout_matches_the_processor(both, text, suffix, images):
    processor, encoder = both
    expected = _processor(processor, text, suffix, images)
    got = _ours(encoder, text, suffix)
    assert got == expected
    assert got["input_ids"][: TOKENS_PER_IMAGE * images + 1] == [encoder.image_token_id] * (
        TOKENS_PER_IMAGE * images
    ) + [encoder.tokenizer.tokenizer.token_to_id("<bos>")]
    labelled = [label for label in got["labels"] if label != IGNORE_INDEX]
    assert labelled == ([*encoder.tokenizer.tokenizer.encode(suffix).ids, encoder.eos_id] if suffix else [])


def test_a_tokenizer_that_adds_a_bos_does_not_get_a_second_one(both):
    """Gemma's tokenizer_config.json asks for a BOS (the processor switches it off at run time)."""
    processor, encoder = both
    bos = encoder.tokenizer.tokenizer.token_to_id("<bos>")
    eager = dataclasses.replace(encoder, tokenizer=dataclasses.replace(encoder.tokenizer, bos_id=bos))
    assert _ours(eager, "<image>caption en", None) == _processor(processor, "<image>caption en", None, 1)


def test_with_image_places_the_image_as_the_processor_does_without_a_placeholder(both):
    """``ask`` writes ``<image>\\nquestion``; the processor's canonical prompt is the question with no placeholder."""
    processor, encoder = both
    expected = _processor(processor, "detect star", None, 1)
    assert _ours(encoder, with_image("detect star"), None) == expected
