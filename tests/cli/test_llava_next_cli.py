"""``vlmkit ask`` and ``vlmkit chat`` on a transformers-saved tiny LLaVA-NeXT: the prompt holds as many image
tokens as that image's size needs, and the answer is transformers' greedy one."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

import vlmkit
from llava_next_kit import EOS, hf_llava_next, save_tiny_processor
from testkit import noise_image
from vlmkit.cli import main
from vlmkit.errors import InputError
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.chat import CAPTION_PROMPT, with_image
from vlmkit.tasks.caption import caption
from vlmkit.tasks.chat import ask, chat_encoder
from vlmkit.tasks.image_prompts import image_inputs

QUESTION = "what is this ?"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("llava_next")
    hf = hf_llava_next()
    hf.save_pretrained(directory)
    processor = save_tiny_processor(directory)
    wide = directory / "wide.png"
    noise_image(90, 40).save(wide)  # 90 wide, 40 high
    return hf, processor, directory, wide


def test_ask_prompt_and_answer_match_transformers(saved):
    hf, processor, directory, image = saved
    ours = vlmkit.load(directory)
    inputs = image_inputs(ours, [str(image)])
    size = tuple(inputs["image_sizes"][0].tolist())
    prompt = chat_encoder(ours, size).encode(
        [{"role": "user", "content": with_image(QUESTION)}], add_generation_prompt=True
    )
    expected = processor(text=f"USER: <image>\n{QUESTION} ASSISTANT:", images=[Image.open(image)], return_tensors="pt")
    assert prompt.input_ids == expected["input_ids"][0].tolist()
    with torch.no_grad():
        out = hf.generate(**expected, max_new_tokens=6, do_sample=False)[0, expected["input_ids"].shape[1] :].tolist()
    out = out[: out.index(EOS)] if EOS in out else out
    got = ours.generate(
        [prompt.input_ids],
        inputs["pixel_values"],
        GenerationConfig(max_new_tokens=6),
        image_sizes=inputs["image_sizes"],
    )[0]
    assert got == out and len(got) > 1
    answer = ask(ours, str(image), QUESTION, GenerationConfig(max_new_tokens=6))  # cut at the template's "USER:"
    assert answer.strip() == processor.tokenizer.decode(out, skip_special_tokens=True).partition("USER:")[0].strip()


def test_ask_and_chat_commands(saved, capsys, monkeypatch):
    _, _, directory, image = saved
    assert main(["ask", str(image), QUESTION, "--model", str(directory), "--max-new-tokens", "4"]) == 0
    assert capsys.readouterr().out.endswith("\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\n/quit\n"))
    assert main(["chat", str(image), "--model", str(directory), "--max-new-tokens", "4"]) == 0


def test_a_text_only_question_needs_no_size(saved):
    _, _, directory, _ = saved
    assert isinstance(ask(vlmkit.load(directory), None, QUESTION, GenerationConfig(max_new_tokens=3)), str)


def test_a_batch_of_differently_sized_images_gets_each_its_own_count(saved, tmp_path):
    _, _, directory, wide = saved
    tall = tmp_path / "tall.png"
    noise_image(33, 61).save(tall)
    model = vlmkit.load(directory)
    config = GenerationConfig(max_new_tokens=4)
    captions = caption(model, [str(wide), str(tall)], config=config)
    assert captions == [ask(model, str(image), CAPTION_PROMPT, config) for image in (wide, tall)]


def test_a_fixed_count_caller_is_told_the_count_needs_the_size(saved):
    _, _, directory, _ = saved
    with pytest.raises(InputError, match="depends on its size"):
        chat_encoder(vlmkit.load(directory))
