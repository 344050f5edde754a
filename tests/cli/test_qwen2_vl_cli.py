"""``vlmkit ask``, ``caption`` and ``chat`` on a transformers-saved tiny Qwen2-VL: the checkpoint's chat template with
each image's pad tokens expanded for its size, and transformers' greedy answer."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import vlmkit
from qwen2_vl_kit import IM_END, IMAGE, MAX_PIXELS, MIN_PIXELS, VIDEO, hf_qwen2_5_vl, hf_qwen2_vl, save_tiny_processor
from testkit import noise_image
from vlmkit.cli import main
from vlmkit.data.videoworld import encode_mp4, resolve_codec
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.chat import with_image
from vlmkit.processing.jinja_chat import content_parts
from vlmkit.processing.video import FrameSampling, read_video
from vlmkit.tasks.chat import Chat, answer_images, ask

QUESTION = "what is this ?"


def _reference(hf, processor, image: Image.Image, question: str, tokens: int) -> str:
    messages = [{"role": "user", "content": content_parts(with_image(question))}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    with torch.no_grad():
        out = hf.generate(**inputs, max_new_tokens=tokens, do_sample=False)[0, inputs["input_ids"].shape[1] :].tolist()
    out = out[: out.index(IM_END)] if IM_END in out else out
    return processor.tokenizer.decode(out, skip_special_tokens=True)


def test_ask_and_caption_match_transformers(tmp_path, capsys):
    torch.manual_seed(0)
    hf = hf_qwen2_vl()
    hf.save_pretrained(tmp_path)
    processor = save_tiny_processor(tmp_path)
    wide, tall = tmp_path / "wide.png", tmp_path / "tall.png"
    noise_image(56, 24).save(wide)
    noise_image(24, 40).save(tall)
    expected = [_reference(hf, processor, Image.open(p).convert("RGB"), QUESTION, 8) for p in (wide, tall)]
    assert any(expected)  # a random model may end one answer at once

    ours = vlmkit.load(tmp_path)
    config = GenerationConfig(max_new_tokens=8)
    assert ask(ours, str(wide), QUESTION, config) == expected[0]
    assert answer_images(ours, [QUESTION, QUESTION], [str(wide), str(tall)], config) == expected

    assert main(["ask", str(wide), QUESTION, "--model", str(tmp_path), "--max-new-tokens", "8"]) == 0
    assert capsys.readouterr().out.strip() == expected[0].strip()
    caption = ["caption", str(wide), str(tall), "--prompt", QUESTION, "--max-new-tokens", "8"]
    assert main([*caption, "--model", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{wide}: {expected[0]}", f"{tall}: {expected[1]}"]


def test_chat_answers_turn_by_turn_as_chat_does(tmp_path, capsys, monkeypatch):
    """``vlmkit chat`` on a Qwen2-VL: each line a turn of one ``Chat`` (whose turns equal transformers' answers on the
    whole conversation: tests/tasks/test_qwen2_vl_chat.py)."""
    torch.manual_seed(0)
    hf_qwen2_vl().save_pretrained(tmp_path)
    save_tiny_processor(tmp_path)
    noise_image(56, 24, 1).save(tmp_path / "x.png")
    chat = Chat(vlmkit.load(tmp_path), str(tmp_path / "x.png"), config=GenerationConfig(max_new_tokens=8))
    expected = [chat.send(QUESTION), chat.send("describe it")]
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{QUESTION}\ndescribe it\n/quit\n"))
    assert main(["chat", str(tmp_path / "x.png"), "--model", str(tmp_path), "--max-new-tokens", "8"]) == 0
    assert capsys.readouterr().out == "".join(f"{answer}\n" for answer in expected)


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
def test_ask_about_a_video_matches_transformers(tmp_path, capsys, family):
    """A clip's sampled frames go in as one video; the answer is transformers' greedy one on the same frames."""
    torch.manual_seed(0)
    hf = hf_qwen2_vl() if family == "qwen2_vl" else hf_qwen2_5_vl()
    hf.save_pretrained(tmp_path / "hf")
    processor = save_tiny_processor(tmp_path / "hf")
    rng = np.random.default_rng(0)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(
        encode_mp4([rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(12)], 6, resolve_codec("auto"))
    )
    ours = vlmkit.load(tmp_path / "hf")  # videos take the image bounds, as transformers' video processor does here
    assert (ours.image_processor.video_min_pixels, ours.image_processor.video_max_pixels) == (MIN_PIXELS, MAX_PIXELS)

    frames = read_video(clip, FrameSampling(frames=4))
    videos = ours.image_processor.videos([[frame.image for frame in frames]])
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": QUESTION}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = ours.image_processor.expand(
        processor.tokenizer(text)["input_ids"], IMAGE, None, VIDEO, videos["video_grid_thw"]
    )
    inputs = {"input_ids": torch.tensor([ids]), **videos}
    if family == "qwen2_5_vl":
        inputs["second_per_grid_ts"] = torch.tensor([2 * (frames[-1].time - frames[0].time) / 3])
    inputs["mm_token_type_ids"] = (inputs["input_ids"] == VIDEO).long() * 2
    with torch.no_grad():
        out = hf.generate(**inputs, max_new_tokens=8, do_sample=False)[0, len(ids) :].tolist()
    out = out[: out.index(IM_END)] if IM_END in out else out
    expected = processor.tokenizer.decode(out, skip_special_tokens=True)
    assert len(out) > 2, out  # the comparison below is about a real answer

    argv = ["ask", str(clip), QUESTION, "--model", str(tmp_path / "hf"), "--frames", "4", "--max-new-tokens", "8"]
    assert main(argv) == 0
    assert capsys.readouterr().out.rstrip("\n") == expected
