"""A real server on loopback for the serving tests: tiny random models, a small index, uvicorn in a thread.

Not a conftest.py: ``tests/conftest.py`` is imported as the module ``conftest``, and a second
conftest here would shadow it for ``from testkit import ...``. Test modules import ``server``.
"""

from __future__ import annotations

import base64
import contextlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

import testkit  # noqa: E402
import tiny_vlm  # noqa: E402
from vlmkit.serving import ServedModels, ServerLimits, create_app  # noqa: E402

API_KEY = "test-key-123"
ENCODER_ID = "tiny-clip"
CHAT_ID = "tiny-vlm"


def tiny_encoder():
    """A random CLIP-style dual encoder at 32 px with tokenizer and image processor."""
    return testkit.tiny_model()


def tiny_chat_model():
    """A random VLM at 32 px with a byte-level tokenizer that knows ``<image>``."""
    return tiny_vlm.tiny_vlm()


def shapes_png(index: int, size: int = 64) -> bytes:
    from vlmkit.data.shapesworld import ShapesWorldConfig, make_example

    return make_example(ShapesWorldConfig(image_size=size, max_objects=2), 0, "train", index)[0]


def png_bytes(width: int, height: int, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64," + base64.b64encode(data).decode("ascii")


def build_index(folder: Path, encoder, count: int = 6, absolute: bool = False):
    """ShapesWorld images in ``folder`` and a search index of them in ``folder/index``, naming them by
    relative paths (or, with ``absolute``, by absolute ones, as the folder indexer does)."""
    from vlmkit.search.store import ItemMeta, SearchStore
    from vlmkit.tasks import embed_images

    paths = []
    for i in range(count):
        path = folder / f"shape{i}.png"
        path.write_bytes(shapes_png(i))
        paths.append(path)
    store = SearchStore.create(folder / "index", model_id=ENCODER_ID, dim=encoder.config.embed_dim)
    items = [
        ItemMeta(path=p.resolve().as_posix() if absolute else p.name, sha256=str(i), size=p.stat().st_size, mtime=0.0)
        for i, p in enumerate(paths)
    ]
    store.add(items, embed_images(encoder, paths).numpy())
    store.commit()
    return store


@contextlib.contextmanager
def serve(app, **options) -> Iterator[str]:
    """Run ``app`` with uvicorn (``options`` for its ``Config``) on a free loopback port in a thread;
    yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def slow_down(module: torch.nn.Module, delay: float) -> None:
    """Make each forward pass of ``module`` take ``delay`` s more: long enough to act mid-generation."""
    forward = module.forward

    def slow_forward(*args, **kwargs):
        time.sleep(delay)
        return forward(*args, **kwargs)

    module.forward = slow_forward


def generated_tokens(url: str, headers: dict[str, str] | None = None) -> float:
    """The server's count of generated tokens, from /metrics."""
    import httpx

    metrics = httpx.get(url + "/metrics", headers=headers).text
    return float(
        next(line.split()[1] for line in metrics.splitlines() if line.startswith("vlmkit_generated_tokens_total"))
    )


@dataclass
class RunningServer:
    url: str
    app: object
    folder: Path  # the allowed local folder, holding the indexed images

    @staticmethod
    def headers(key: str = API_KEY) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


TEST_LIMITS = dict(
    max_batch=4,
    batch_wait_ms=5,
    queue=8,
    max_tokens_cap=16,
    timeout_s=30,
    max_body_bytes=256 * 1024,
    max_image_pixels=256 * 256,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[RunningServer]:
    """Both models, an index, an API key and an allowed folder."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("served")
    encoder = tiny_encoder()
    models = ServedModels(
        encoder=encoder,
        encoder_id=ENCODER_ID,
        chat=tiny_chat_model(),
        chat_id=CHAT_ID,
        index=build_index(folder, encoder),
        images_root=folder,
    )
    app = create_app(models, ServerLimits(**TEST_LIMITS, api_key=API_KEY, allow_local_folder=folder))
    with serve(app) as url:
        yield RunningServer(url, app, folder)
