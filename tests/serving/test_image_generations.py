"""``POST /v1/images/generations``: the openai client's ``images.generate`` against a served tiny DiT, the same
pixels as ``tasks.imagine`` for the same seed, and one clear 4xx for each bad request."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from serving_live import serve

from t2i_kit import tiny_dit
from vlmkit.serving import ServedModels, create_app
from vlmkit.tasks.imagine import MAX_IMAGES, ImagineSettings, generate_images

openai = pytest.importorskip("openai")


@pytest.fixture(scope="module")
def served():
    torch.manual_seed(0)
    model = tiny_dit()
    app = create_app(ServedModels(t2i=model, t2i_id="dit"))
    with serve(app) as url:
        yield url, model


def _pixels(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def test_the_openai_client_generates_seeded_images(served):
    url, model = served
    client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=60)
    reply = client.images.generate(
        model="dit", prompt="a red star", n=2, response_format="b64_json", extra_body={"seed": 3, "steps": 4}
    )
    assert len(reply.data) == 2 and reply.created > 0
    got = np.stack([_pixels(item.b64_json) for item in reply.data])
    expected = generate_images(model, ["a red star"], 2, ImagineSettings(steps=4, seed=3)).permute(0, 2, 3, 1).numpy()
    assert got.shape == (2, 16, 16, 3) and np.array_equal(got, expected)
    assert httpx.get(url + "/healthz").json()["images"] is True


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"prompt": ""}, 400, "expected a non-empty string"),
        ({"prompt": "  "}, 400, "expected a non-empty string"),
        ({"prompt": "a star", "steps": 0}, 400, "steps: expected an integer in 1..1000"),
        ({"prompt": "a star", "steps": -1}, 400, "steps: expected an integer in 1..1000"),
        ({"prompt": "a star", "guidance": "NaN"}, 400, "guidance: expected a finite number"),
        ({"prompt": "a star", "n": MAX_IMAGES + 1}, 400, f"at most {MAX_IMAGES} per call"),
        ({"prompt": "a star", "n": 0}, 400, "images per prompt: expected a positive integer"),
        ({"prompt": "a star", "size": "1024x1024"}, 400, "this model draws 16x16 images"),
        ({"prompt": "a star", "response_format": "url"}, 400, "only b64_json"),
        ({"prompt": "a star", "model": "dall-e-3"}, 404, "dall-e-3"),
    ],
)
def test_bad_requests_get_one_clear_error(served, body, status, says):
    url, _ = served
    response = httpx.post(url + "/v1/images/generations", json=body, timeout=30)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]["message"]


def test_a_server_without_a_t2i_model_says_so(tmp_path):
    from testkit import tiny_model

    app = create_app(ServedModels(encoder=tiny_model()))
    with serve(app) as url:
        response = httpx.post(url + "/v1/images/generations", json={"prompt": "a star"}, timeout=30)
    assert response.status_code == 404 and "--t2i" in response.json()["error"]["message"]
