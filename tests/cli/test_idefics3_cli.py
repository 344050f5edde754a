"""``vlmkit ask``, ``caption`` and ``chat`` on a transformers-saved tiny SmolVLM: the prompt is the processor's
(tiles between marker tokens, through the checkpoint's chat template) and the answer is transformers' greedy one."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

import vlmkit
from idefics3_kit import EOS, hf_idefics3, save_tiny_processor
from testkit import noise_image
from vlmkit.cli import main
from vlmkit.errors import InputError
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.chat import CAPTION_PROMPT, with_image
from vlmkit.tasks.caption import caption
from vlmkit.tasks.chat import ask, chat_encoder
from vlmkit.tasks.image_prompts import image_inputs, image_layouts_of

QUESTION = "what is this ?"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(2)
    directory = tmp_path_factory.mktemp("smolvlm")
    hf = hf_idefics3("smolvlm")
    hf.save_pretrained(directory)
    processor = save_tiny_processor(directory, "smolvlm")
    wide = directory / "wide.png"
    noise_image(90, 40).save(wide)  # 90 wide, 40 high: 2 x 3 tiles
    return hf, processor, directory, wide


def test_ask_prompt_and_answer_match_transformers(saved):
    hf, processor, directory, image = saved
    ours = vlmkit.load(directory)
    inputs = image_inputs(ours, [str(image)])
    encoder = chat_encoder(ours, image_layouts=image_layouts_of(ours, inputs))
    prompt = encoder.encode([{"role": "user", "content": with_image(QUESTION)}], add_generation_prompt=True)
    conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]
    text = processor.apply_chat_template(conversation, add_generation_prompt=True)
    expected = processor(text=text, images=[[Image.open(image)]], return_tensors="pt")
    assert prompt.input_ids == expected["input_ids"][0].tolist()
    with torch.no_grad():
        out = hf.generate(**expected, max_new_tokens=6, do_sample=False)[0, expected["input_ids"].shape[1] :].tolist()
    out = out[: out.index(EOS)] if EOS in out else out
    got = ours.generate([prompt.input_ids], inputs["pixel_values"], GenerationConfig(max_new_tokens=6))[0]
    assert got == out and len(set(got)) > 1
    answer = ask(ours, str(image), QUESTION, GenerationConfig(max_new_tokens=6))
    assert answer.strip() == processor.tokenizer.decode(out, skip_special_tokens=True).strip()


def test_ask_caption_and_chat_commands(saved, capsys, monkeypatch):
    _, _, directory, image = saved
    assert main(["ask", str(image), QUESTION, "--model", str(directory), "--max-new-tokens", "4"]) == 0
    assert capsys.readouterr().out.endswith("\n")
    assert main(["caption", str(image), str(image), "--model", str(directory), "--max-new-tokens", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{image}: ") and lines[0] == lines[1]
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\nwhat is it ?\n/quit\n"))
    assert main(["chat", str(image), "--model", str(directory), "--max-new-tokens", "4"]) == 0


def test_a_batch_of_differently_sized_images_gets_each_its_own_layout(saved, tmp_path):
    _, _, directory, wide = saved
    tall, small = tmp_path / "tall.png", tmp_path / "small.png"
    noise_image(33, 61).save(tall)
    noise_image(12, 12).save(small)
    model = vlmkit.load(directory)
    config = GenerationConfig(max_new_tokens=4)
    images = [str(wide), str(tall), str(small)]
    assert caption(model, images, config=config) == [ask(model, image, CAPTION_PROMPT, config) for image in images]


def test_a_caller_without_layouts_is_told_why(saved):
    _, _, directory, _ = saved
    with pytest.raises(InputError, match="splits images"):
        chat_encoder(vlmkit.load(directory))
