"""ask_video, caption_video and ground_video on a tiny random VLM: sampled frames reach it as timed images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tiny_vlm import tiny_vlm
from vlmkit.data.videoworld import encode_mp4, resolve_codec
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.video import FrameSampling, read_video
from vlmkit.processing.video_input import grounding_prompt, video_prompt
from vlmkit.tasks.chat import chat_encoder, respond
from vlmkit.tasks.video import VIDEO_CAPTION_PROMPT, ask_clips, ask_frames, ask_video, caption_video, ground_video

pytest.importorskip("av")

GREEDY = GenerationConfig(max_new_tokens=6)
THREE = FrameSampling("uniform", frames=3)


@pytest.fixture
def model():
    torch.manual_seed(0)
    vlm = tiny_vlm()
    with torch.no_grad():  # sharper, so answers differ with their input
        for param in vlm.decoder.parameters():
            param.mul_(6 if param.ndim > 1 else 1)
    return vlm


@pytest.fixture
def clip(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(12)]
    path = tmp_path / "clip.mp4"
    path.write_bytes(encode_mp4(frames, 6, resolve_codec("auto")))
    return path


def _by_hand(model, clip, text: str) -> str:
    frames = read_video(clip, THREE)
    prompt = video_prompt([f.time for f in frames], text)
    ids = chat_encoder(model).encode([{"role": "user", "content": prompt}], add_generation_prompt=True).input_ids
    return respond(model, [ids], [f.image for f in frames], GREEDY)[0]


def test_ask_video_shows_the_sampled_frames_with_their_times(model, clip, monkeypatch):
    import vlmkit.tasks.video as video

    calls = []

    def spy(model, prompts, images, config=None):
        calls.append((model.tokenizer.decode(prompts[0]), [image.size for image in images]))
        return respond(model, prompts, images, config)

    monkeypatch.setattr(video, "respond", spy)
    answer = ask_video(model, clip, "what moves?", sampling=THREE, config=GREEDY)
    monkeypatch.undo()
    assert answer == _by_hand(model, clip, "what moves?")
    ((prompt, sizes),) = calls
    assert sizes == [(32, 32)] * 3
    assert "frame at 0.33s:" in prompt and "frame at 1s:" in prompt and "frame at 1.67s:" in prompt  # frames 2, 6, 10
    assert caption_video(model, clip, sampling=THREE, config=GREEDY) == _by_hand(model, clip, VIDEO_CAPTION_PROMPT)


def test_the_frames_matter(model, clip, tmp_path):
    still = tmp_path / "still.mp4"
    still.write_bytes(encode_mp4([np.zeros((32, 32, 3), np.uint8)] * 12, 6, resolve_codec("auto")))
    answers = {ask_video(model, path, "what moves?", sampling=THREE, config=GREEDY) for path in (clip, still)}
    assert len(answers) == 2


def test_ground_video_reads_a_moment_out_of_the_answer(model, clip, monkeypatch):
    import vlmkit.tasks.video as video

    asked = []

    def answer(model, frames, text, config=None):
        asked.append((len(frames), text))
        return "from 0.5 to 1.25 seconds"

    monkeypatch.setattr(video, "ask_frames", answer)
    moment, text = ground_video(model, clip, "the blue star appears", sampling=THREE)
    assert moment == (0.5, 1.25) and text == "from 0.5 to 1.25 seconds"
    assert asked == [(3, grounding_prompt("the blue star appears"))]


def test_clips_asked_in_a_batch_answer_as_each_does_alone(model, clip, tmp_path):
    still = tmp_path / "still.mp4"
    still.write_bytes(encode_mp4([np.full((32, 32, 3), 90, np.uint8)] * 12, 6, resolve_codec("auto")))
    frames = [read_video(path, THREE) for path in (clip, still, clip)]
    questions = [(frames[0], "what moves?"), (frames[1], "what colour is it?"), (frames[2], VIDEO_CAPTION_PROMPT)]
    alone = [ask_frames(model, f, text, GREEDY) for f, text in questions]
    assert ask_clips(model, questions, GREEDY, batch_size=2) == alone
    assert alone[0] == _by_hand(model, clip, "what moves?")
