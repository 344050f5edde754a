"""Image URLs in requests -> decoded images, without ever reaching outside what the operator allowed.

Accepted: ``data:image/...;base64,...`` URLs (what OpenAI clients send for local images), and
``file://`` URLs only when the server was started with ``--allow-local-folder`` and only for files
inside it, symlinks resolved. ``http(s)`` URLs are refused: fetching them would let any client make
the server request internal addresses (SSRF).

What a request's images may cost is settled from their headers before any pixel is decoded: at most
``max_images`` of them, each within ``max_image_pixels`` and all together within ``max_request_pixels``.
Decoding then shrinks large images towards the model's input size (``decode_side``): a JPEG is decoded
at a reduced scale and never allocated at full size, and what waits in a queue is the reduced image.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from PIL import Image

from vlmkit.errors import InputError
from vlmkit.processing.images import load_image, open_image
from vlmkit.serving.errors import ApiError
from vlmkit.serving.limits import ServerLimits
from vlmkit.serving.state import Deadline


def _bad(message: str, param: str) -> ApiError:
    return ApiError(400, message, param=param, code="invalid_image")


def decode_data_url(url: str, param: str) -> bytes:
    """The bytes of a base64 ``data:`` URL; any media type is accepted, the decoder judges the bytes."""
    header, comma, payload = url.partition(",")
    if not comma or not header.startswith("data:"):
        raise _bad("malformed data URL: expected 'data:<media type>;base64,<data>'", param)
    if not header.endswith(";base64"):
        raise _bad("data URL must be base64-encoded (';base64,')", param)
    try:
        return base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _bad("data URL holds invalid base64", param) from None


def local_file(url: str, folder: Path | None, param: str) -> Path:
    """The path a ``file://`` URL names, if it lies inside ``folder`` (symlinks and ``..`` resolved)."""
    if folder is None:
        raise _bad("file:// URLs are disabled; start the server with --allow-local-folder to allow a folder", param)
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise _bad("file:// URLs must name a local path (file:///path)", param)
    raw = unquote(parts.path)
    if "\x00" in raw:
        raise _bad("file:// paths must not contain a NUL byte", param)
    if ".." in Path(raw).parts:
        raise _bad("file:// paths must not contain '..'", param)
    path = Path(raw).resolve()
    if not path.is_relative_to(folder):
        raise _bad(f"file:// path is outside the allowed folder {folder}", param)
    if not path.is_file():
        raise _bad(f"file:// path {raw} does not exist in the allowed folder", param)
    return path


def image_source(url: object, folder: Path | None, param: str) -> bytes | Path:
    """The bytes (``data:``) or the allowed file (``file://``) an image URL names; nothing is decoded yet."""
    if not isinstance(url, str) or not url:
        raise _bad("expected an image URL string (data: URL)", param)
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "data":
        return decode_data_url(url, param)
    if scheme == "file":
        return local_file(url, folder, param)
    if scheme in ("http", "https"):
        raise _bad("remote image URLs are not fetched; send the image inline as a base64 data: URL", param)
    raise _bad(f"unsupported image URL scheme {scheme!r}; send a base64 data: URL", param)


def _refused(error: InputError, source: bytes | Path, param: str) -> ApiError:
    message = str(error)
    if isinstance(source, bytes):
        message = message.replace(f"image bytes ({len(source)} B): ", "")
    return _bad(f"image: {message}", param)


def check_image_count(count: int, limits: ServerLimits, param: str) -> None:
    """400 when a request holds more images than ``max_images`` (checked before any is looked at)."""
    if count > limits.max_images:
        raise ApiError(
            400, f"at most {limits.max_images} images per request, got {count}", param=param, code="too_many_images"
        )


def decode_side(processor: Any) -> int | None:
    """The side an image may be shrunk to before ``processor`` resizes it: twice what its resize needs,
    so the pre-shrink barely changes the pixels the model sees; None (no shrinking) when unknown."""
    size = getattr(processor, "size", None)
    if not isinstance(size, tuple) or not size:
        return None
    needed = getattr(processor, "shortest_edge", None) or max(size)
    return 2 * max(needed, *size)


def load_images(
    urls: Sequence[object], params: Sequence[str], limits: ServerLimits, min_side: int | None = None
) -> list[Image.Image]:
    """A request's images decoded (call off the event loop): their count, then each header's and the
    headers' total pixels checked before any pixel is decoded."""
    check_image_count(len(urls), limits, params[0] if params else "messages")
    sources = [image_source(url, limits.allow_local_folder, param) for url, param in zip(urls, params, strict=True)]
    total = 0
    for source, param in zip(sources, params, strict=True):
        try:
            with open_image(source) as header:
                total += header.width * header.height
        except InputError as error:
            raise _refused(error, source, param) from None
        if total > limits.max_request_pixels:
            raise ApiError(
                400,
                f"the request's images hold more than {limits.max_request_pixels} pixels together; send fewer or "
                "smaller images",
                param=param,
                code="too_many_pixels",
            )
    images = []
    for source, param in zip(sources, params, strict=True):
        try:
            images.append(load_image(source, max_pixels=limits.max_image_pixels, min_side=min_side))
        except InputError as error:
            raise _refused(error, source, param) from None
    return images


async def decode_images(
    urls: Sequence[object],
    params: Sequence[str],
    limits: ServerLimits,
    deadline: Deadline,
    min_side: int | None = None,
) -> list[Image.Image]:
    """``load_images`` on a worker thread, within the request's deadline."""
    return await deadline.wait(asyncio.to_thread(load_images, urls, params, limits, min_side))
