"""Chat prompts: rendering, image expansion, and labels that cover exactly the answers and their EOS."""

from __future__ import annotations

import pytest

from tiny_vlm import tiny_chat_tokenizer
from vlmkit.errors import ConfigError, InputError
from vlmkit.processing.chat import IGNORE_INDEX, TEMPLATES, ChatEncoder, render, template_named

MESSAGES = [
    {"role": "system", "content": "be brief."},
    {"role": "user", "content": "<image>\nwhat colour is it?"},
    {"role": "assistant", "content": "red"},
    {"role": "user", "content": "and the shape?"},
    {"role": "assistant", "content": "a circle"},
]


def _encoder(tokens_per_image: int = 3) -> ChatEncoder:
    tokenizer = tiny_chat_tokenizer()
    image = tokenizer.tokenizer.token_to_id("<image>")
    return ChatEncoder(tokenizer, TEMPLATES["vlmkit"], tokenizer.eos_id, image, tokens_per_image)


def test_render_shows_the_template():
    text = render(MESSAGES[1:3], TEMPLATES["vlmkit"], add_generation_prompt=False)
    assert text == "User: <image>\nwhat colour is it?\nAssistant: red"
    llava = render(MESSAGES[1:2], TEMPLATES["llava"])
    assert llava == "USER: <image>\nwhat colour is it? ASSISTANT:"


def test_labels_cover_answers_and_eos_only():
    encoder = _encoder()
    encoded = encoder.encode(MESSAGES)
    ids, labels = encoded.input_ids, encoded.labels
    assert len(ids) == len(labels) and encoded.images == 1
    assert ids[0] == encoder.tokenizer.bos_id and ids.count(encoder.image_token_id) == 3
    learned = [i for i, label in enumerate(labels) if label != IGNORE_INDEX]
    assert all(labels[i] == ids[i] for i in learned)
    eos_positions = [i for i, token in enumerate(ids) if token == encoder.eos_id]
    assert len(eos_positions) == 2 and set(eos_positions) <= set(learned)
    decode = encoder.tokenizer.decode
    answers = decode([ids[i] for i in learned if ids[i] != encoder.eos_id])
    assert answers.split() == ["red", "a", "circle"]
    # An inference prompt is the training sequence's prefix: the answer follows the generation prompt.
    prompt = encoder.encode(MESSAGES[:2], add_generation_prompt=True).input_ids
    assert ids[: len(prompt)] == prompt
    assert decode(ids[len(prompt) : len(prompt) + 2]) == "red" and ids[len(prompt) + 1] == encoder.eos_id


def test_errors_are_input_errors():
    encoder = _encoder()
    with pytest.raises(InputError, match="message #0"):
        encoder.encode([{"role": "robot", "content": "hi"}])
    text_only = ChatEncoder(encoder.tokenizer, TEMPLATES["vlmkit"], encoder.eos_id)
    with pytest.raises(InputError, match="takes no images"):
        text_only.encode(MESSAGES[1:2])
    with pytest.raises(InputError, match="without losing an image"):
        encoder.encode(MESSAGES[1:3], max_length=3)
    full = encoder.encode(MESSAGES[1:3]).input_ids
    assert encoder.encode(MESSAGES[1:3], max_length=len(full) - 2).input_ids == full[:-2]
    with pytest.raises(ConfigError, match="chat_template 'nope'"):
        template_named("nope")
