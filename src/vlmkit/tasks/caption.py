"""Image captioning with a generative VLM: one chat turn per image with a fixed prompt."""

from __future__ import annotations

from collections.abc import Sequence

from vlmkit.models import VisionLanguageModel
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.chat import CAPTION_PROMPT
from vlmkit.processing.images import ImageSource
from vlmkit.tasks.chat import answer_images


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
    return answer_images(model, [prompt] * len(images), images, config, batch_size)
