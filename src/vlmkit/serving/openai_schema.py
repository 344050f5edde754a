"""Request and response bodies: OpenAI's chat and embeddings API, plus vlmkit's classify and search.

Only the fields the server acts on are declared; OpenAI fields that would change the answer in ways
this server cannot honour (``n`` > 1, tools, logprobs, penalties) are declared so that a request
using them gets a clear 400 instead of being silently answered as if they were absent. Other
unknown fields are ignored, as OpenAI's clients send a few bookkeeping ones (``user``, ...).

Every string is ``Text``: valid Unicode, which JSON does not promise (``"\\ud800"``, a lone surrogate,
parses into a Python string that no tokenizer, file system or encoder will take), so such a request is
a 400 naming the field instead of a failure deep inside the server.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field


def _unicode(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text holds a lone surrogate (U+D800 to U+DFFF), which is not valid Unicode") from None
    return text


Text = Annotated[str, AfterValidator(_unicode)]


class TextPart(BaseModel):
    type: Literal["text"]
    text: Text


class ImageUrl(BaseModel):
    url: Text
    detail: Text | None = None


class ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: ImageUrl


class VideoUrl(BaseModel):
    """vlmkit extension: a clip as a base64 ``data:video/...`` URL; ``frames``: how many to sample."""

    url: Text
    frames: int | None = Field(default=None, ge=1)


class VideoPart(BaseModel):
    type: Literal["video_url"]
    video_url: VideoUrl


ContentPart = TextPart | ImagePart | VideoPart


class Message(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: Text | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    model: Text
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: Text | list[Text] | None = None
    seed: int | None = Field(default=None, ge=-(2**63), lt=2**63)  # a 64-bit integer, as OpenAI's
    n: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logprobs: bool | None = None
    tools: list[Any] | None = None


class EmbeddingRequest(BaseModel):
    """``input_type: "image"`` (a vlmkit extension) makes every input an image URL (``data:`` or ``file://``)."""

    model: Text
    input: Text | list[Text] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    input_type: Literal["text", "image"] = "text"


class ClassifyRequest(BaseModel):
    """vlmkit extension: zero-shot classification of one image against free-text labels."""

    model: Text | None = None
    image: Text
    labels: list[Text] = Field(min_length=1, max_length=256)
    templates: list[Text] | None = Field(default=None, max_length=32)
    top_k: int | None = Field(default=None, ge=1)


class ReadRequest(BaseModel):
    """vlmkit extension: read the text of one page image (a base64 data URL)."""

    image: Text


class ImageGenerationRequest(BaseModel):
    """OpenAI's ``images.generate`` body; ``steps``, ``guidance``, ``seed`` and ``sampler`` are vlmkit extensions.

    Numbers are checked by ``tasks.imagine`` (one line naming the field); ``response_format`` may only be
    ``b64_json``: the server never hosts files to link to.
    """

    model: Text | None = None
    prompt: Text
    n: int = 1
    size: Text | None = None
    response_format: Text | None = None
    steps: int = 20
    guidance: float = 3.0
    seed: int | None = None
    sampler: Text = "euler"


class GroundRequest(BaseModel):
    """vlmkit extension: the objects ``labels`` (a list or one ``;``-separated string) or ``expression`` name."""

    model: Text | None = None
    image: Text
    labels: Text | list[Text] | None = Field(default=None, max_length=64)
    expression: Text | None = None


class SearchRequest(BaseModel):
    """vlmkit extension: the index's nearest images to a text or an image (exactly one of them)."""

    text: Text | None = None
    image: Text | None = None
    k: int = Field(default=12, ge=1, le=200)
    min_score: float | None = Field(default=None, allow_inf_nan=False)
    thumbnails: bool = True
