"""Location and mask tokens: both conventions' bins, the parser on good and broken outputs, tokenizers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlmkit.errors import InputError
from vlmkit.processing.locations import (
    FLORENCE,
    LOCATION_TOKENS,
    SEGMENT_TOKENS,
    add_location_tokens,
    box_tokens,
    detect_prompt,
    format_object,
    format_objects,
    has_location_tokens,
    has_segment_tokens,
    location_bins,
    parse_objects,
    segment_prompt,
)


def test_paligemma_bins_are_y_first_and_round_times_1023():
    # 640 x 480: x0 64 -> 0.1 -> 102.3 -> 102; y1 240 -> 511.5 -> 512 (half to even, as tf.round); x1 -> 1023.
    assert location_bins([64, 48, 640, 240], 640, 480) == [102, 102, 512, 1023]
    assert box_tokens([0, 0, 640, 480], 640, 480) == "<loc0000><loc0000><loc1023><loc1023>"
    # out-of-image coordinates are clipped to the first and last bin
    assert location_bins([-5, -5, 700, 500], 640, 480) == [0, 0, 1023, 1023]


def test_paligemma_round_trip_recovers_integer_pixel_boxes():
    rng = np.random.default_rng(0)
    for _ in range(200):
        x0, y0 = rng.integers(0, 60, size=2)
        box = [int(x0), int(y0), int(x0 + rng.integers(1, 5)), int(y0 + rng.integers(1, 5))]
        parsed = parse_objects(format_object("red cross", box, 64, 64), 64, 64).objects[0]
        assert [round(v) for v in parsed.box] == box
        assert parsed.label == "red cross"


def test_florence_bins_match_transformers_post_processor():
    transformers = pytest.importorskip("transformers.models.florence2.processing_florence2")

    class NoTokens:
        all_special_tokens = ()

    reference = transformers.Florence2PostProcessor({}, NoTokens())
    boxes = torch.tensor([[10.0, 20.0, 300.5, 199.9], [0.0, 0.0, 640.0, 480.0]])
    expected = reference.quantize(boxes, (640, 480)).tolist()
    assert [location_bins(b.tolist(), 640, 480, FLORENCE) for b in boxes] == expected
    text = "".join(
        format_object(label, b.tolist(), 640, 480, convention=FLORENCE) for label, b in zip("ab", boxes, strict=True)
    )
    back = reference.dequantize(torch.tensor(expected), (640, 480)).tolist()  # it truncates to whole pixels
    parsed = parse_objects(text, 640, 480, FLORENCE)
    assert [o.label for o in parsed.objects] == ["a", "b"]
    assert [[int(v) for v in o.box] for o in parsed.objects] == back


def test_florence_reads_several_boxes_per_label():
    parsed = parse_objects(
        "car<loc_0><loc_0><loc_10><loc_10><loc_20><loc_20><loc_30><loc_30>dog<loc_1>", 1000, 1000, FLORENCE
    )
    assert [o.label for o in parsed.objects] == ["car", "car"]
    assert parsed.objects[1].box == (20.5, 20.5, 30.5, 30.5)
    assert parsed.unparsed == ("dog<loc_1>",)


def test_parser_reads_segments_and_tolerates_wordpiece_spaces():
    codes = list(range(16))
    text = format_objects(
        [format_object("wall", [0, 0, 32, 16], 64, 64, codes), format_object("the red star", [8, 8, 16, 24], 64, 64)]
    )
    assert text.count(" ; ") == 1
    spaced = " ".join(text.replace("><", "> <").split())
    for candidate in (text, spaced):
        first, second = parse_objects(candidate, 64, 64).objects
        assert first.label == "wall" and first.codes == tuple(codes)
        assert second.label == "the red star" and second.codes is None
        assert [round(v) for v in second.box] == [8, 8, 16, 24]


@pytest.mark.parametrize(
    "text",
    [
        "<loc0010><loc0020><loc0500>",  # truncated box
        "<loc0010><loc0020><loc0500><loc0600> <seg001><seg002> star",  # truncated mask
        "<loc0600><loc0020><loc0500><loc0600> star",  # y1 < y0
        "a star somewhere",
        "<loc9999><loc0020><loc0500><loc0600> star",
    ],
)
def test_malformed_objects_are_kept_as_text_beside_the_good_ones(text):
    good = format_object("circle", [1, 2, 30, 40], 64, 64)
    parsed = parse_objects(f"{good} ; {text}", 64, 64)
    assert [o.label for o in parsed.objects] == ["circle"]
    assert parsed.unparsed == (text,)
    assert parsed.text == f"{good} ; {text}"


def test_boxes_are_clipped_to_the_image_and_bad_sizes_refused():
    parsed = parse_objects("<loc0000><loc0000><loc1023><loc1023> all", 10, 20).objects[0]
    assert parsed.box == (0.0, 0.0, 10.0, 20.0)
    assert parse_objects("", 10, 20).objects == []
    with pytest.raises(InputError, match="image size"):
        parse_objects("x", 0, 20)


def test_mask_codes_are_checked():
    with pytest.raises(InputError, match="16 codes"):
        format_object("x", [0, 0, 1, 1], 4, 4, codes=[1, 2])
    with pytest.raises(InputError, match="16 codes"):
        format_object("x", [0, 0, 1, 1], 4, 4, codes=[128] * 16)


def test_prompts():
    assert detect_prompt(["star", "circle"]) == "detect star ; circle"
    assert detect_prompt("star;  circle ") == "detect star ; circle"
    assert segment_prompt("the red star") == "segment the red star"
    with pytest.raises(InputError, match="at least one"):
        detect_prompt(" ; ")


def test_added_tokens_are_single_ids_that_decoding_keeps():
    from tiny_vlm import tiny_chat_tokenizer

    tokenizer = tiny_chat_tokenizer()
    assert not has_location_tokens(tokenizer)
    before = tokenizer.vocab_size
    assert add_location_tokens(tokenizer) == len(LOCATION_TOKENS) + len(SEGMENT_TOKENS)
    assert add_location_tokens(tokenizer) == 0  # idempotent
    assert tokenizer.vocab_size == before + 1152
    assert has_location_tokens(tokenizer) and has_segment_tokens(tokenizer)
    text = format_object("red cross", [1, 2, 30, 40], 64, 64, codes=[5] * 16)
    ids = tokenizer(text).input_ids[0].tolist()
    assert ids.count(tokenizer.tokenizer.token_to_id("<seg005>")) == 16
    assert tokenizer.decode(ids) == text
