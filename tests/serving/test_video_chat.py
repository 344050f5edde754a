"""A clip in a chat: a base64 ``video_url`` part reaches the model as its sampled frames, each introduced by
its time (as ``tasks.video`` asks); a moment in the answer comes back parsed; each limit is one clear 4xx."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest
import torch
from scripted_chat import script_chat
from serving_live import data_url, png_bytes, serve, tiny_chat_model

from vlmkit.data.videoworld import encode_mp4, resolve_codec
from vlmkit.processing.video import FrameSampling, read_video
from vlmkit.processing.video_input import format_seconds
from vlmkit.serving import ServedModels, ServerLimits, create_app

pytest.importorskip("av")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    """Two seconds at 6 fps, 32 px."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(12)]
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    path.write_bytes(encode_mp4(frames, 6, resolve_codec("auto")))
    return path.read_bytes()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return tiny_chat_model()


def _video(clip: bytes, frames: int | None = None, media: str = "video/mp4") -> dict:
    part = {"url": f"data:{media};base64," + base64.b64encode(clip).decode("ascii")}
    return {"type": "video_url", "video_url": part | ({"frames": frames} if frames else {})}


def _ask(*parts: dict, text: str = "When does the star appear?") -> dict:
    content = [*parts, {"type": "text", "text": text}]
    return {"model": "chat", "messages": [{"role": "user", "content": content}], "max_tokens": 16}


def test_a_clip_reaches_the_model_as_timed_frames_and_the_moment_comes_back(clip, model, monkeypatch, tmp_path):
    runs = script_chat(monkeypatch, model, "1.25 to 1.75")
    app = create_app(ServedModels(chat=model), ServerLimits(video_frames=3))
    with serve(app) as url:
        assert httpx.get(url + "/healthz").json()["video"] is True
        reply = httpx.post(url + "/v1/chat/completions", json=_ask(_video(clip)), timeout=60)
        four = httpx.post(url + "/v1/chat/completions", json=_ask(_video(clip, frames=4)), timeout=60)
    assert reply.status_code == 200, reply.text
    message = reply.json()["choices"][0]["message"]
    assert message["content"] == "1.25 to 1.75"
    assert message["moment"] == {"start": 1.25, "end": 1.75, "duration": pytest.approx(2.0)}
    (tmp_path / "clip.mp4").write_bytes(clip)
    times = [frame.time for frame in read_video(tmp_path / "clip.mp4", FrameSampling(frames=3))]
    prompt = model.tokenizer.decode(runs[0].input_ids[0])
    assert [f"frame at {format_seconds(t)}s:" in prompt for t in times] == [True] * 3
    assert prompt.count("frame at ") == 3 and "when does the star appear?" in prompt.lower()
    # each frame is one image of the prompt: a fourth frame costs one image's tokens more (and its time line)
    assert runs[1].prompt_shape[1] - runs[0].prompt_shape[1] >= model.tokens_per_image
    assert four.json()["choices"][0]["message"]["moment"]["start"] == 1.25


def test_each_video_limit_is_one_clear_4xx(clip, model, monkeypatch):
    script_chat(monkeypatch, model, "no moment here")
    limits = ServerLimits(max_video_seconds=1.5, max_images=4, video_frames=2, max_body_bytes=len(clip) * 3)
    with serve(create_app(ServedModels(chat=model), limits)) as url:

        def ask(body: dict) -> httpx.Response:
            return httpx.post(url + "/v1/chat/completions", json=body, timeout=60)

        too_long = ask(_ask(_video(clip)))
        too_many = ask(_ask(_video(clip, frames=5)))
        too_big = ask(_ask(_video(clip * 4)))
        broken = ask(_ask(_video(b"\x00\x00\x00 ftypisom" + bytes(200))))
        not_video = ask(_ask(_video(png_bytes(8, 8), media="image/png")))
        two = ask(_ask(_video(clip), _video(clip)))
        mixed = ask(_ask(_video(clip), {"type": "image_url", "image_url": {"url": data_url(png_bytes(8, 8))}}))
    errors = {name: r.json()["error"] for name, r in locals().items() if isinstance(r, httpx.Response)}
    assert too_long.status_code == 400 and errors["too_long"]["code"] == "video_too_long"
    assert "lasts 2.0 s" in errors["too_long"]["message"] and errors["too_long"]["param"].endswith("video_url.url")
    assert too_many.status_code == 400 and errors["too_many"]["code"] == "too_many_frames"
    assert too_big.status_code == 413
    assert broken.status_code == 400 and errors["broken"]["code"] == "invalid_video"
    assert "vlmkit-video-" not in errors["broken"]["message"]  # the temporary file is not named
    assert not_video.status_code == 400 and "data:video/" in errors["not_video"]["message"]
    assert two.status_code == 400 and errors["two"]["code"] == "too_many_videos"
    assert mixed.status_code == 400 and "not both" in errors["mixed"]["message"]


def test_a_reply_without_a_moment_has_none(clip, model, monkeypatch):
    script_chat(monkeypatch, model, "a red circle")
    with serve(create_app(ServedModels(chat=model), ServerLimits(video_frames=2))) as url:
        reply = httpx.post(url + "/v1/chat/completions", json=_ask(_video(clip)), timeout=60)
    assert reply.status_code == 200 and "moment" not in reply.json()["choices"][0]["message"]
