"""Image captioning with a generative VLM: one chat turn per image with a fixed prompt."""

from __future__ import annotations

from collections.abc import Sequence

from vlmkit.models import VisionLanguageModel
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.chat import CAPTION_PROMPT, with_image
from vlmkit.processing.images import ImageSource
from vlmkit.tasks.chat import chat_encoder, respond


def caption(
    model: VisionLanguageModel,
    images: Sequence[ImageSource],
    max_new_tokens: int = 32,
    prompt: str = CAPTION_PROMPT,
    batch_size: int = 8,
    config: GenerationConfig | None = None,
) -> list[str]:
    """One caption per image, batched ``batch_size`` at a time (greedy unless ``config`` says otherwise).

    ``prompt`` is the user turn, the image placed before it by ``with_image``; it should be the one
    the model was trained with (``vlmkit.processing.chat.CAPTION_PROMPT`` for vlmkit's recipes).
    ``config`` overrides ``max_new_tokens`` when given.
    """
    config = config or GenerationConfig(max_new_tokens=max_new_tokens)
    ids = (
        chat_encoder(model)
        .encode([{"role": "user", "content": with_image(prompt)}], add_generation_prompt=True)
        .input_ids
    )
    captions: list[str] = []
    for start in range(0, len(images), batch_size):
        chunk = list(images[start : start + batch_size])
        captions += respond(model, [ids] * len(chunk), chunk, config)
    return captions
