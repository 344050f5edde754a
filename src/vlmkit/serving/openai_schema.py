"""Request and response bodies: OpenAI's chat and embeddings API, plus vlmkit's classify and search.

Only the fields the server acts on are declared; OpenAI fields that would change the answer in ways
this server cannot honour (``n`` > 1, tools, logprobs, penalties) are declared so that a request
using them gets a clear 400 instead of being silently answered as if they were absent. Other
unknown fields are ignored, as OpenAI's clients send a few bookkeeping ones (``user``, ...).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ImageUrl(BaseModel):
    url: str
    detail: str | None = None


class ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: ImageUrl


ContentPart = TextPart | ImagePart


class Message(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    model: str
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logprobs: bool | None = None
    tools: list[Any] | None = None


class EmbeddingRequest(BaseModel):
    """``input_type: "image"`` (a vlmkit extension) makes every input an image URL (``data:`` or ``file://``)."""

    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    input_type: Literal["text", "image"] = "text"


class ClassifyRequest(BaseModel):
    """vlmkit extension: zero-shot classification of one image against free-text labels."""

    model: str | None = None
    image: str
    labels: list[str] = Field(min_length=1, max_length=256)
    templates: list[str] | None = Field(default=None, max_length=32)
    top_k: int | None = Field(default=None, ge=1)


class SearchRequest(BaseModel):
    """vlmkit extension: the index's nearest images to a text or an image (exactly one of them)."""

    text: str | None = None
    image: str | None = None
    k: int = Field(default=12, ge=1, le=200)
    min_score: float | None = None
    thumbnails: bool = True
