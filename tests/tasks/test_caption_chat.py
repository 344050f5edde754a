"""caption, ask and Chat on a tiny random VLM: batching, prompt format, and the chat's reused cache."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tiny_vlm import tiny_vlm
from vlmkit.errors import InputError
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.chat import CAPTION_PROMPT
from vlmkit.tasks.caption import caption
from vlmkit.tasks.chat import Chat, ask, chat_encoder, respond
from vlmkit.tasks.image_prompts import image_inputs

GREEDY = GenerationConfig(max_new_tokens=8)


@pytest.fixture
def model():
    torch.manual_seed(0)
    vlm = tiny_vlm()
    with torch.no_grad():  # a sharper random model, so answers are not all empty or all alike
        for param in vlm.decoder.parameters():
            param.mul_(6 if param.ndim > 1 else 1)
    return vlm


def test_caption_batches_equal_single_images(model, photo_files):
    captions = caption(model, photo_files[:3], batch_size=2, config=GREEDY)
    assert len(captions) == 3
    assert captions == [caption(model, [p], config=GREEDY)[0] for p in photo_files[:3]]
    assert captions[0] == ask(model, photo_files[0], CAPTION_PROMPT, GREEDY)


def test_chat_turns_reuse_the_cache_and_match_a_fresh_prompt(model, photo_files):
    chat = Chat(model, photo_files[0], config=GREEDY)
    first = chat.send("what colour is it?")
    assert first == ask(model, photo_files[0], "what colour is it?", GREEDY)
    lengths: list[int] = []

    def record(module, args, kwargs):
        tokens = args[0] if args else kwargs.get("input_ids")
        lengths.append((kwargs["inputs_embeds"] if tokens is None else tokens).shape[1])

    hook = model.decoder.register_forward_pre_hook(record, with_kwargs=True)
    second = "".join(chat.send("and the shape?", stream=True))
    hook.remove()
    history = chat.history
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[1]["content"] == first and history[3]["content"] == second
    encoder = chat_encoder(model)
    full = encoder.encode(history[:3], add_generation_prompt=True).input_ids
    first_prompt = encoder.encode(history[:1], add_generation_prompt=True).input_ids
    # Turn two prefilled only what follows the cached turn one: not the image, not the first question.
    assert 0 < lengths[0] <= len(full) - len(first_prompt)
    # Same answer as generating the whole conversation from scratch.
    assert second == respond(model, [full], [photo_files[0]], GREEDY)[0]
    chat.reset()
    assert chat.history == [] and chat.send("what colour is it?") == first


def test_a_frame_delta_chat_gives_a_later_turns_image_as_its_change(model, photo_files):
    """A turn that adds an image re-embeds the earlier ones, so the decoder gets B - A as in training, not raw B."""
    model.config = dataclasses.replace(model.config, frame_delta="previous")
    chat = Chat(model, photo_files[0], config=GREEDY)
    chat.send("what colour is it?")
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    embed = model.embed

    def spy(ids, features=None):
        out = embed(ids, features)
        calls.append((ids, out))
        return out

    model.embed = spy
    chat.send("and now?", image=photo_files[1])
    ids, embedded = calls[0]
    slots = ids[0] == model.config.image_token_id
    assert int(slots.sum()) == 2 * model.tokens_per_image  # both pictures embedded together
    projected = model.encode_images(image_inputs(model, photo_files[:2])["pixel_values"])
    later = embedded[0, slots][model.tokens_per_image :]
    torch.testing.assert_close(later, projected[1] - projected[0])


def test_image_count_errors(model, photo_files):
    with pytest.raises(InputError, match="image"):
        ask(model, None, "<image> <image> two?", GREEDY)
