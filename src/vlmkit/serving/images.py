"""Image URLs in requests -> decoded images, without ever reaching outside what the operator allowed.

Accepted: ``data:image/...;base64,...`` URLs (what OpenAI clients send for local images), and
``file://`` URLs only when the server was started with ``--allow-local-folder`` and only for files
inside it, symlinks resolved. ``http(s)`` URLs are refused: fetching them would let any client make
the server request internal addresses (SSRF). Every image is decoded with the pixel limit checked
from its header, before the pixels are allocated.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from urllib.parse import unquote, urlsplit

from PIL import Image

from vlmkit.errors import InputError
from vlmkit.processing.images import load_image
from vlmkit.serving.errors import ApiError


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
    if ".." in Path(raw).parts:
        raise _bad("file:// paths must not contain '..'", param)
    path = Path(raw).resolve()
    if not path.is_relative_to(folder):
        raise _bad(f"file:// path is outside the allowed folder {folder}", param)
    if not path.is_file():
        raise _bad(f"file:// path {raw} does not exist in the allowed folder", param)
    return path


def fetch_image(url: object, *, max_pixels: int, folder: Path | None, param: str) -> Image.Image:
    """Decode the image an URL names (``data:`` or allowed ``file://``) into an upright RGB image."""
    if not isinstance(url, str) or not url:
        raise _bad("expected an image URL string (data: URL)", param)
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "data":
        source: bytes | Path = decode_data_url(url, param)
    elif scheme == "file":
        source = local_file(url, folder, param)
    elif scheme in ("http", "https"):
        raise _bad("remote image URLs are not fetched; send the image inline as a base64 data: URL", param)
    else:
        raise _bad(f"unsupported image URL scheme {scheme!r}; send a base64 data: URL", param)
    try:
        return load_image(source, max_pixels=max_pixels)
    except InputError as error:
        message = str(error)
        if isinstance(source, bytes):
            message = message.replace(f"image bytes ({len(source)} B): ", "")
        raise _bad(f"image: {message}", param) from None
