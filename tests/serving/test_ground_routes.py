"""``/v1/detect`` and ``/v1/segment`` over tasks.ground and tasks.segment (labelled pixel boxes, RLE masks),
off unless the served VLM has location tokens (and a mask tokenizer); and a chat reply that writes location
tokens also carries its parsed objects, in the sent image's pixels, plain and streamed."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
import torch
from scripted_chat import script_chat
from serving_live import data_url, png_bytes, serve, tiny_chat_model

import vlmkit.tasks.ground as ground
from grounding_kit import GridCodec, grounding_vlm, script
from vlmkit.data.shapesworld.masks import rle_decode
from vlmkit.processing.locations import format_object, format_objects
from vlmkit.processing.masks import mask_crop
from vlmkit.serving import ServedModels, create_app
from vlmkit.serving.errors import ApiError

WIDTH, HEIGHT = 80, 60
IMAGE = data_url(png_bytes(WIDTH, HEIGHT))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return grounding_vlm()


def _app(model, codec=None):
    return create_app(ServedModels(chat=model, chat_id="grounder", mask_tokenizer=codec))


def test_detect_and_refer_return_labelled_boxes_in_the_image_s_pixels(model, monkeypatch):
    answer = format_objects(
        [format_object("star", [8, 6, 40, 30], WIDTH, HEIGHT), format_object("circle", [50, 10, 79, 59], WIDTH, HEIGHT)]
    )
    seen = script(monkeypatch, ground, lambda prompt: answer + " ; <loc0001>")
    with serve(_app(model)) as url:
        health = httpx.get(url + "/healthz").json()
        found = httpx.post(url + "/v1/detect", json={"image": IMAGE, "labels": ["star", "circle"]}, timeout=30)
        referred = httpx.post(url + "/v1/detect", json={"image": IMAGE, "expression": "the red star"}, timeout=30)
    assert health["detect"] is True and health["segment"] is False
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["object"] == "grounding" and body["model"] == "grounder"
    assert (body["width"], body["height"]) == (WIDTH, HEIGHT)
    assert [o["label"] for o in body["objects"]] == ["star", "circle"]
    assert [round(v) for v in body["objects"][0]["box"]] == [8, 6, 40, 30]
    assert body["unparsed"] == ["<loc0001>"] and "mask" not in body["objects"][0]
    assert "detect star ; circle" in seen[0] and "detect the red star" in seen[1]
    assert [o["label"] for o in referred.json()["objects"]] == ["star"]  # refer keeps the first object


def test_segment_returns_each_object_s_mask_as_rle(model, monkeypatch):
    truth = np.zeros((HEIGHT, WIDTH), dtype=bool)
    truth[10:42, 16:48] = True
    truth[10:26, 16:32] = False  # whole 4x4 cells of the box's 64x64 crop: the grid codec is exact
    box = [16, 10, 48, 42]
    codec = GridCodec()
    codes = codec.encode(torch.from_numpy(mask_crop(truth, box))[None])[0].tolist()
    seen = script(monkeypatch, ground, lambda prompt: format_object("the red star", box, WIDTH, HEIGHT, codes))
    with serve(_app(model, codec)) as url:
        assert httpx.get(url + "/healthz").json()["segment"] is True
        reply = httpx.post(url + "/v1/segment", json={"image": IMAGE, "labels": "the red star"}, timeout=30)
    assert reply.status_code == 200, reply.text
    (found,) = reply.json()["objects"]
    assert "segment the red star" in seen[0]
    assert (rle_decode(found["mask"]) == truth).all()


def test_grounding_is_off_without_location_tokens_or_a_mask_tokenizer_and_asks_are_checked(model):
    with serve(create_app(ServedModels(chat=tiny_chat_model()))) as url:
        off = httpx.post(url + "/v1/detect", json={"image": IMAGE, "labels": "star"})
        assert httpx.get(url + "/healthz").json()["detect"] is False
    assert off.status_code == 404 and off.json()["error"]["code"] == "no_grounding"
    with serve(_app(model)) as url:
        no_masks = httpx.post(url + "/v1/segment", json={"image": IMAGE, "labels": "star"})
        both = httpx.post(url + "/v1/detect", json={"image": IMAGE, "labels": "a", "expression": "b"})
        empty = httpx.post(url + "/v1/detect", json={"image": IMAGE, "labels": "a ; "})
        split = httpx.post(url + "/v1/detect", json={"image": IMAGE, "expression": "a ; b"})
        broken = httpx.post(url + "/v1/detect", json={"image": "data:image/png;base64,AAAA", "labels": "a"})
        other = httpx.post(url + "/v1/detect", json={"image": IMAGE, "labels": "a", "model": "other"})
    assert no_masks.status_code == 404 and no_masks.json()["error"]["code"] == "no_segmentation"
    assert [r.status_code for r in (both, empty, split, broken)] == [400, 400, 400, 400]
    assert broken.json()["error"]["param"] == "image"
    assert other.status_code == 404 and other.json()["error"]["code"] == "model_not_found"


def test_a_full_grounding_queue_is_503(model):
    from vlmkit.serving.grounding import GroundService

    service = GroundService(model, "grounder", None, queue=1)
    service.admit()
    with pytest.raises(ApiError) as refused:
        service.admit()
    assert refused.value.status == 503 and refused.value.headers["Retry-After"] == "1"
    service.leave()
    service.admit()


def test_a_chat_reply_with_location_tokens_carries_its_objects(model, monkeypatch):
    big = data_url(png_bytes(4 * WIDTH, 4 * HEIGHT))  # decoded smaller for the model; boxes are in its pixels
    answer = format_object("star", [40, 20, 200, 160], 4 * WIDTH, 4 * HEIGHT)
    script_chat(monkeypatch, model, answer)
    messages = [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": big}}, {"type": "text", "text": "detect star"}],
        }
    ]
    body = {"model": "grounder", "messages": messages, "max_tokens": 32}
    with serve(_app(model)) as url:
        plain = httpx.post(url + "/v1/chat/completions", json=body, timeout=30)
        streamed = httpx.post(url + "/v1/chat/completions", json={**body, "stream": True}, timeout=30)
        text_only = httpx.post(
            url + "/v1/chat/completions", json={**body, "messages": [{"role": "user", "content": "hi"}]}, timeout=30
        )
    assert plain.status_code == 200, plain.text
    message = plain.json()["choices"][0]["message"]
    assert message["content"] == answer
    (found,) = message["objects"]
    assert found["label"] == "star" and [round(v) for v in found["box"]] == [40, 20, 200, 160]
    chunks = [json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: {")]
    last = chunks[-1]["choices"][0]
    assert last["finish_reason"] == "stop" and last["delta"]["objects"] == message["objects"]
    assert "objects" not in text_only.json()["choices"][0]["message"]  # no image: nothing to place boxes on


def test_serve_takes_the_mask_tokenizer_from_the_command_line(model, tmp_path, monkeypatch):
    from vlmkit.checkpoints import save_pretrained
    from vlmkit.cli import build_parser
    from vlmkit.cli.serve import build_app
    from vlmkit.config.mask_tokenizer import MaskTokenizerConfig
    from vlmkit.errors import ConfigError
    from vlmkit.models.mask_tokenizer import MaskTokenizer

    codec = MaskTokenizer(
        MaskTokenizerConfig(embedding_dim=8, encoder_channels=(4, 4, 4, 8), decoder_channels=(8, 4, 4, 4))
    )
    save_pretrained(model, tmp_path / "grounder")
    save_pretrained(codec, tmp_path / "masks")

    def app(*extra: str):
        return build_app(build_parser().parse_args(["serve", *extra]))

    box = [16, 10, 48, 42]
    script(monkeypatch, ground, lambda prompt: format_object("star", box, WIDTH, HEIGHT, [5] * 16))
    served = app(
        "--vlm", str(tmp_path / "grounder"), "--mask-tokenizer", str(tmp_path / "masks"), "--video-frames", "3"
    )
    assert served.state.vlmkit.limits.video_frames == 3
    with serve(served) as url:
        reply = httpx.post(url + "/v1/segment", json={"image": IMAGE, "labels": "star"}, timeout=30)
    assert reply.status_code == 200, reply.text
    mask = rle_decode(reply.json()["objects"][0]["mask"])
    assert mask.shape == (HEIGHT, WIDTH) and not mask[:10].any() and not mask[:, :16].any()  # inside its box
    with pytest.raises(ConfigError, match="give --vlm too"):
        app("--read", "--mask-tokenizer", str(tmp_path / "masks"))
    with pytest.raises(ConfigError, match="expected a mask tokenizer"):
        app("--vlm", str(tmp_path / "grounder"), "--mask-tokenizer", str(tmp_path / "grounder"))


def test_groundings_run_one_at_a_time_and_a_timed_out_one_holds_its_turn_until_done(model):
    import asyncio
    import threading
    import time

    from vlmkit.serving.grounding import GroundService
    from vlmkit.serving.state import Deadline

    service = GroundService(model, "grounder", None, queue=4)
    running, spans = threading.Lock(), []

    def work(name: str):
        def run():
            assert running.acquire(blocking=False), "two groundings ran at once"
            started = time.monotonic()
            time.sleep(0.2)
            spans.append((name, started, time.monotonic()))
            running.release()
            return name

        return run

    async def main():
        with pytest.raises(ApiError) as late:
            await Deadline(0.05).wait(service.run(work("first")))
        return late.value.status, await service.run(work("second"))

    status, second = asyncio.run(main())
    assert status == 504 and second == "second"
    assert [name for name, *_ in spans] == ["first", "second"] and spans[1][1] >= spans[0][2]
