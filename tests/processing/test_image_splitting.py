"""vlmkit's image splitting equals transformers' Idefics3 / SmolVLM image processors and prompt layout.

On images of many shapes (wide, tall, tiny, larger than the longest edge): the same tile grid as
``get_number_of_image_patches``, the same crops (pixel_values within 1e-5) and pixel_attention_mask, with and
without splitting; the same prompt text as SmolVLM's ``get_image_prompt_string``; and a multi-turn,
multi-image conversation through the checkpoint's own chat template gives ``apply_chat_template``'s text and,
images given, its expanded ``input_ids`` (the Idefics3Processor's).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers.models.smolvlm.processing_smolvlm import get_image_prompt_string

from idefics3_kit import IMAGE, image_processor, save_tiny_processor
from vlmkit.errors import ConfigError, InputError
from vlmkit.processing.anyres import image_processor_from_dict, image_processor_from_hf
from vlmkit.processing.image_splitting import SplitImagePreprocessor, image_prompt, image_prompt_ids
from vlmkit.processing.jinja_chat import JinjaChatEncoder, read_chat_template
from vlmkit.processing.text import TextTokenizer

# (height, width): wide, tall, square, tiny, very wide, odd, larger than the longest edge (96) on one side.
SIZES = [(40, 90), (90, 40), (50, 50), (7, 9), (17, 200), (61, 33), (300, 120), (33, 32)]


def _images(sizes) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in sizes]


def _ours(reference) -> SplitImagePreprocessor:
    ours = image_processor_from_hf(reference.to_dict())
    assert isinstance(ours, SplitImagePreprocessor)
    return ours


@pytest.mark.parametrize("family", ["idefics3", "smolvlm"])
@pytest.mark.parametrize("splitting", [True, False])
def test_crops_match_transformers(family, splitting):
    reference = image_processor(family, splitting)
    ours = _ours(reference)
    images = _images(SIZES)
    got = ours(images)
    expected = reference(images, return_tensors="pt", return_row_col_info=True)  # one sample holding every image
    assert got["rows"].tolist() == expected["rows"][0] and got["cols"].tolist() == expected["cols"][0]
    real = got["pixel_attention_mask"].flatten(0, 1).amax((1, 2)).bool()
    crops = got["pixel_values"].flatten(0, 1)[real]
    assert crops.shape == expected["pixel_values"][0].shape
    torch.testing.assert_close(crops, expected["pixel_values"][0], atol=1e-5, rtol=0)
    assert bool(got["pixel_attention_mask"].flatten(0, 1)[real].all())
    assert not bool(got["pixel_values"].flatten(0, 1)[~real].any())  # padding crops are zeros, as transformers'
    if splitting:
        for (height, width), rows, cols in zip(SIZES, got["rows"].tolist(), got["cols"].tolist(), strict=True):
            count, hf_rows, hf_cols = reference.get_number_of_image_patches(height, width)
            assert (rows, cols) == (hf_rows, hf_cols) and count == (rows * cols + 1 if rows else 0)


def test_batch_padding_matches_transformers():
    """Several samples of different crop counts: transformers pads each to the most crops, as vlmkit does."""
    reference = image_processor()
    images = _images(SIZES[:3])
    expected = reference([[image] for image in images], return_tensors="pt")
    got = _ours(reference)(images)
    torch.testing.assert_close(got["pixel_values"], expected["pixel_values"], atol=1e-5, rtol=0)
    assert torch.equal(got["pixel_attention_mask"], expected["pixel_attention_mask"])


@pytest.mark.parametrize(("rows", "cols"), [(0, 0), (1, 3), (2, 2), (3, 1)])
def test_prompt_text_is_smolvlms(rows, cols):
    expected = get_image_prompt_string(rows, cols, 4, "<fake_token_around_image>", "<image>", "<global-img>")
    assert image_prompt(rows, cols, 4) == expected


def test_settings_round_trip_and_refusals():
    reference = image_processor()
    ours = _ours(reference)
    assert ours.tile.resample == "lanczos" and ours.side == 32 and ours.longest_edge == 96 and ours.splitting
    assert image_processor_from_dict(json.loads(json.dumps(ours.to_dict()))) == ours
    config = reference.to_dict()
    for change, named in [
        ({"do_magic": True}, "'do_magic'"),
        ({"do_pad": False}, "'do_pad'"),
        ({"do_resize": False}, "'do_resize'"),
        ({"size": {"height": 96, "width": 96}}, "'size'"),
        ({"max_image_size": {"longest_edge": 32, "shortest_edge": 8}}, "'max_image_size'"),
        ({"resample": 0}, "'resample'"),
    ]:
        with pytest.raises(ConfigError, match=named):
            image_processor_from_hf({**config, **change})
    for wrong in (_images(SIZES[:1])[0], []):
        with pytest.raises(InputError, match="list of images"):
            ours(wrong)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    directory = tmp_path_factory.mktemp("idefics3_processor")
    return directory, save_tiny_processor(directory)


CONVERSATION = [  # vlmkit's messages: <image> placeholders in the text
    {"role": "user", "content": "<image>\nwhat is this ?"},
    {"role": "assistant", "content": "a red star"},
    {"role": "user", "content": "and that <image> ? and <image> describe it"},
    {"role": "assistant", "content": "a big blue circle"},
    {"role": "user", "content": "is it small ?"},
]


def _hf_conversation(messages, images=None):
    """transformers' form of vlmkit's messages: content parts, ``images`` (when given) in the image parts."""
    parts, remaining = [], iter(images or [])
    for message in messages:
        content = []
        for index, piece in enumerate(message["content"].split("<image>")):
            if index:
                content.append({"type": "image"} if images is None else {"type": "image", "image": next(remaining)})
                piece = piece.removeprefix("\n")
            if piece:
                content.append({"type": "text", "text": piece})
        parts.append({"role": message["role"], "content": content})
    return parts


@pytest.mark.parametrize("turns", [1, 3, 5])
def test_chat_template_matches_apply_chat_template(saved, turns):
    directory, processor = saved
    messages = CONVERSATION[:turns]
    images = _images(SIZES[: sum(m["content"].count("<image>") for m in messages)])
    hf_messages = _hf_conversation(messages)
    text = processor.apply_chat_template(hf_messages, add_generation_prompt=True, tokenize=False)
    expected = processor.apply_chat_template(
        _hf_conversation(messages, images), add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"][0]

    tokenizer = TextTokenizer.from_hf_dir(directory)
    template = read_chat_template(directory)
    assert template is not None
    assert template.render(hf_messages, add_generation_prompt=True) == text
    crops = _ours(processor.image_processor)(images) if images else {"rows": [], "cols": []}
    layouts = [
        image_prompt_ids(tokenizer, int(r), int(c), 4) for r, c in zip(crops["rows"], crops["cols"], strict=True)
    ]
    encoder = JinjaChatEncoder(tokenizer, template, IMAGE, 0, multimodal=True, image_layouts=layouts)
    got = encoder.encode(messages, add_generation_prompt=True)
    assert got.input_ids == expected
    grids = zip(crops["rows"], crops["cols"], strict=True)
    assert got.images == len(images)
    assert got.input_ids.count(IMAGE) == sum(4 * (int(rows) * int(cols) + 1) for rows, cols in grids)


def test_a_template_in_chat_template_json_reads_the_same(saved, tmp_path):
    """Older hub checkpoints ship the template as ``chat_template.json``; it renders as the ``.jinja`` one."""
    directory, _ = saved
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((directory / name).read_bytes())
    source = (directory / "chat_template.jinja").read_text()
    (tmp_path / "chat_template.json").write_text(json.dumps({"chat_template": source}))
    template = read_chat_template(tmp_path)
    assert template is not None and template.source == source
    messages = _hf_conversation(CONVERSATION)
    assert template.render(messages) == read_chat_template(directory).render(messages)
