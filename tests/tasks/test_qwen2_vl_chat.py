"""``Chat`` on a transformers-saved tiny Qwen2-VL / Qwen2.5-VL: two turns, an image in each, the cache kept between
them (M-RoPE positions shifted by each image), and the second answer is transformers' greedy one on the whole
conversation rendered by the checkpoint's own template with both images."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import vlmkit
from qwen2_vl_kit import IM_END, hf_qwen2_5_vl, hf_qwen2_vl, save_tiny_processor
from testkit import noise_image
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.chat import with_image
from vlmkit.processing.jinja_chat import content_parts
from vlmkit.tasks.chat import Chat, ask

FIRST, SECOND = "what is this ?", "describe it and this"
TOKENS = 8


@pytest.fixture(scope="module", params=["qwen2_vl", "qwen2_5_vl"])
def family(request, tmp_path_factory):
    """(transformers model, its processor, the vlmkit model loaded from the same directory, two pictures)."""
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp(request.param)
    hf = hf_qwen2_vl() if request.param == "qwen2_vl" else hf_qwen2_5_vl()
    hf.save_pretrained(directory)
    processor = save_tiny_processor(directory)
    # Pictures on which each random model's answers hold words its 21-word tokenizer can write: most of its 96 ids
    # decode to nothing, and the comparison is of text.
    seeds = (1, 2) if request.param == "qwen2_vl" else (3, 4)
    pictures = [noise_image(56, 24, seeds[0]), noise_image(24, 40, seeds[1])]
    return hf, processor, vlmkit.load(directory), pictures


def _transformers_answer(hf, processor, messages: list[dict], images: list[Image.Image]) -> tuple[str, int]:
    """The greedy answer's text and its token count (before the end of turn)."""
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=images or None, return_tensors="pt")
    with torch.no_grad():
        out = hf.generate(**inputs, max_new_tokens=TOKENS, do_sample=False)[0, inputs["input_ids"].shape[1] :]
    out = out.tolist()
    out = out[: out.index(IM_END)] if IM_END in out else out
    return processor.tokenizer.decode(out, skip_special_tokens=True), len(out)


def test_two_turns_with_an_image_each_match_transformers(family):
    hf, processor, ours, pictures = family
    config = GenerationConfig(max_new_tokens=TOKENS)
    chat = Chat(ours, pictures[0], config=config)
    first = chat.send(FIRST)
    assert first == ask(ours, pictures[0], FIRST, config)

    lengths: list[int] = []
    hook = ours.decoder.embed.register_forward_hook(lambda module, args, out: lengths.append(args[0].shape[1]))
    second = chat.send(SECOND, image=pictures[1])
    hook.remove()

    messages = [
        {"role": "user", "content": content_parts(with_image(FIRST))},
        {"role": "assistant", "content": [{"type": "text", "text": first}]},
        {"role": "user", "content": content_parts(with_image(SECOND))},
    ]
    expected, tokens = _transformers_answer(hf, processor, messages, pictures)
    assert tokens > 2 and expected.split(), expected  # a real answer, not an at-once end
    assert second == expected
    # Turn two prefilled what follows the cached turn one (its second image included), not the first image again.
    whole = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    full = processor(text=[whole], images=pictures, return_tensors="pt")["input_ids"].shape[1]
    image_one = int(ours.image_processor([pictures[0]])["image_grid_thw"].prod()) // 4
    assert 0 < lengths[0] < full - image_one
    assert [m["role"] for m in chat.history] == ["user", "assistant", "user", "assistant"]
    assert chat.history[2]["content"] == with_image(SECOND)


def test_reset_keeps_the_chats_image_and_forgets_the_turns(family):
    _, _, ours, pictures = family
    config = GenerationConfig(max_new_tokens=TOKENS)
    chat = Chat(ours, pictures[0], config=config)
    first = chat.send(FIRST)
    chat.send(SECOND, image=pictures[1])
    chat.reset()
    assert chat.history == [] and chat.send(FIRST) == first


def test_a_text_only_turn_continues_after_the_image(family):
    """No new image in turn two: positions go on from the cache shifted by turn one's image alone."""
    hf, processor, ours, pictures = family
    config = GenerationConfig(max_new_tokens=TOKENS)
    chat = Chat(ours, pictures[0], config=config)
    first = chat.send(FIRST)
    second = chat.send(SECOND)
    messages = [
        {"role": "user", "content": content_parts(with_image(FIRST))},
        {"role": "assistant", "content": [{"type": "text", "text": first}]},
        {"role": "user", "content": content_parts(SECOND)},
    ]
    expected, tokens = _transformers_answer(hf, processor, messages, pictures[:1])
    assert tokens > 2 and second == expected


def test_a_cache_rewound_past_an_image_starts_again(family):
    """A turn whose conversation differs from the cached ids before an image (a template that re-renders earlier
    turns) cannot keep positions shifted for that image: the chat prefills afresh, and answers the same."""
    hf, processor, ours, pictures = family
    config = GenerationConfig(max_new_tokens=TOKENS)
    chat = Chat(ours, pictures[0], config=config)
    first = chat.send(FIRST)
    chat._cached[3] = -1  # as if the conversation now rendered otherwise after "<|im_start|>user\n"
    second = chat.send(SECOND, image=pictures[1])
    messages = [
        {"role": "user", "content": content_parts(with_image(FIRST))},
        {"role": "assistant", "content": [{"type": "text", "text": first}]},
        {"role": "user", "content": content_parts(with_image(SECOND))},
    ]
    assert second == _transformers_answer(hf, processor, messages, pictures)[0]


def test_a_chat_without_an_image_takes_one_later(family):
    """Turn one is text alone (``ask`` without an image too), turn two brings the first image."""
    hf, processor, ours, pictures = family
    config = GenerationConfig(max_new_tokens=TOKENS)
    chat = Chat(ours, config=config)
    first = chat.send(FIRST)
    messages = [{"role": "user", "content": content_parts(FIRST)}]
    assert first == ask(ours, None, FIRST, config) == _transformers_answer(hf, processor, messages, [])[0]
    second = chat.send(SECOND, image=pictures[1])
    messages += [
        {"role": "assistant", "content": [{"type": "text", "text": first}]},
        {"role": "user", "content": content_parts(with_image(SECOND))},
    ]
    assert second == _transformers_answer(hf, processor, messages, pictures[1:])[0]
