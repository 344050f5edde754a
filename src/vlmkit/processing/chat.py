"""Chat prompts: conversation turns -> prompt text, token ids and training labels.

A ``ChatTemplate`` is four format strings. A conversation renders as::

    [bos] system.format(text) user.format(text) assistant answer.format(text) <eos> user... assistant

The vlmkit template (for models trained with vlmkit) reads::

    User: <image>
    What colour is the circle?
    Assistant: red<eos>

Each ``<image>`` in a user turn becomes ``tokens_per_image`` copies of the image token id, which
the VLM replaces by the projected image tokens. Ids are made segment by segment (each piece of
template text, each answer, each image run separately), so training labels cover exactly the answer
tokens and their EOS, and a prompt at inference is tokenised exactly as it was in training.
Checkpoints loaded from Hugging Face that ship a Jinja chat template are prompted through it instead
(``processing.jinja_chat``); those without one name a template here in ``VlmConfig.chat_template``
("llava": ``USER: <image>\\n... ASSISTANT: answer</s>``).

The constants and prompt formats that training, evaluation and inference must agree on live here
too, so that they cannot drift apart: ``IMAGE_TOKEN`` and ``IGNORE_INDEX`` (also used by the models),
``with_image`` (where a single image goes in a user turn), ``CAPTION_PROMPT``, and the
multiple-choice layout (``multiple_choice_prompt``: question, ``A. ...`` options, instruction). A
model answers best when asked exactly as it was trained, so each is defined once.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from vlmkit.errors import ConfigError, InputError
from vlmkit.processing.text import TextTokenizer

IMAGE_TOKEN = "<image>"
IGNORE_INDEX = -100
CAPTION_PROMPT = "Describe the image."
OCR_PROMPT = "<OCR>"  # Florence-2's task prompt: the answer is the page's text lines in reading order
ROLES = ("system", "user", "assistant")
LETTERS = string.ascii_uppercase  # option letters: A, B, ... (at most 26 choices)
MULTIPLE_CHOICE_INSTRUCTION = "Answer with the option's letter."
PAGE_LINE_SEPARATOR = " | "


def with_image(text: str) -> str:
    """A user turn's ``text`` with the image placeholder before it, on its own line.

    Text that already holds ``IMAGE_TOKEN`` is returned as it is: the caller has placed the image.
    """
    return text if IMAGE_TOKEN in text else f"{IMAGE_TOKEN}\n{text}"


def with_page_text(question: str, lines: Sequence[str]) -> str:
    """OCR-augmented prompting: a page's text lines in reading order, then the question; one format for
    training, evaluation and ``ask``. Lines are joined by ``PAGE_LINE_SEPARATOR`` rather than newlines, which
    WordPiece tokenizers drop: a label and its value ("Total due | 11,805.67") stay told apart."""
    return f"Page text: {PAGE_LINE_SEPARATOR.join(lines)}\nQuestion: {question}"


def lettered_options(choices: Sequence[str]) -> str:
    """The choices as ``"A. red\\nB. blue"`` lines, the layout MMBench prompts use."""
    if len(choices) > len(LETTERS):
        raise InputError(f"choices: at most {len(LETTERS)} can be lettered, got {len(choices)}")
    return "\n".join(f"{LETTERS[i]}. {choice}" for i, choice in enumerate(choices))


def multiple_choice_prompt(question: str, choices: Sequence[str]) -> str:
    """Question, lettered options one per line, then the instruction: one format for training and eval."""
    return f"{question}\n{lettered_options(choices)}\n{MULTIPLE_CHOICE_INSTRUCTION}"


@dataclass(frozen=True)
class ChatTemplate:
    """Format strings of each part of a conversation; ``{text}`` is the turn's text.

    ``assistant`` is the prompt that precedes an answer (no ``{text}``); ``answer`` wraps the
    answer itself, which is followed by the EOS id. ``stop`` are strings that end generation
    (an undertrained model may write the next user turn itself). ``images_first`` puts every image's
    tokens at the very start, before the BOS and all text, and drops each placeholder from the text
    with the line break ``with_image`` writes after it: PaliGemma's layout. Its BOS is in the template's
    text, after the images, so the tokenizer's own is not added (Gemma's tokenizer config asks for one).
    """

    system: str = "{text}\n"
    user: str = "User: {text}\n"
    assistant: str = "Assistant:"
    answer: str = " {text}"
    stop: tuple[str, ...] = ("\nUser:",)
    images_first: bool = False


TEMPLATES: dict[str, ChatTemplate] = {
    "vlmkit": ChatTemplate(),
    "llava": ChatTemplate(system="{text} ", user="USER: {text} ", assistant="ASSISTANT:", stop=("USER:",)),
    # transformers' PaliGemmaProcessor: ``<image>`` x N, ``<bos>``, the prefix and a line break, then the
    # suffix and ``<eos>``. The BOS is written as text, as that processor does (its tokenizer adds none).
    "paligemma": ChatTemplate(user="<bos>{text}\n", assistant="", answer="{text}", stop=(), images_first=True),
}


def template_named(name: str) -> ChatTemplate:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ConfigError(f"chat_template {name!r} is not one of {sorted(TEMPLATES)}") from None


def turns(messages: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    turns = []
    for i, message in enumerate(messages):
        role, text = message.get("role"), message.get("content")
        if role not in ROLES or not isinstance(text, str):
            raise InputError(
                f"message #{i}: expected {{'role': one of {list(ROLES)}, 'content': str}}, got {message!r}"
            )
        turns.append((role, text))
    return turns


def render(messages: Sequence[Mapping[str, Any]], template: ChatTemplate, add_generation_prompt: bool = True) -> str:
    """The conversation as one prompt string, ``<image>`` placeholders kept (answers' EOS not shown)."""
    parts = []
    for role, text in turns(messages):
        if role == "assistant":
            parts += [template.assistant, template.answer.format(text=text)]
        else:
            parts.append(getattr(template, role).format(text=text))
    if add_generation_prompt:
        parts.append(template.assistant)
    return "".join(parts)


@dataclass(frozen=True)
class EncodedChat:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX except on answer tokens and their EOS
    images: int  # how many <image> placeholders were expanded

    @property
    def token_type_ids(self) -> list[int]:
        """1 on the answer tokens and their EOS, 0 on the prompt: PaliGemma's prefix (bidirectional) and
        suffix (causal), as its processor returns them."""
        return [int(label != IGNORE_INDEX) for label in self.labels]

    def cut(self, max_length: int | None, image_token_id: int | None) -> EncodedChat:
        """The conversation's first ``max_length`` ids (all of them for None), refusing to cut through an
        image's tokens: a partial image would not match its features."""
        ids = self.input_ids
        if max_length is None or len(ids) <= max_length:
            return self
        if image_token_id is not None and image_token_id in ids[max_length:]:
            raise InputError(f"conversation of {len(ids)} tokens cannot be cut to {max_length} without losing an image")
        return EncodedChat(ids[:max_length], self.labels[:max_length], self.images)


def image_ids(
    index: int, layouts: Sequence[Sequence[int]], image_token_id: int | None, tokens_per_image: int
) -> list[int]:
    """The ids image ``index`` of a conversation becomes: its layout when layouts are given (one serves all), else
    ``tokens_per_image`` copies of ``image_token_id``. The one rule both chat encoders follow."""
    if layouts:
        if len(layouts) == 1:
            return list(layouts[0])
        if index >= len(layouts):
            raise InputError(f"the conversation holds more images than the {len(layouts)} given")
        return list(layouts[index])
    if image_token_id is None or tokens_per_image < 1:
        raise InputError(f"this model takes no images, but the text holds {IMAGE_TOKEN}")
    return [image_token_id] * tokens_per_image


@dataclass
class ChatEncoder:
    """Token ids and labels of conversations under one template, tokenizer and image geometry.

    Attributes:
        tokenizer: the text tokenizer; its ``bos_id`` starts a conversation when set.
        template: the ``ChatTemplate``.
        eos_id: id that ends every answer.
        image_token_id: id repeated for each image token; None for text-only models.
        tokens_per_image: copies of ``image_token_id`` per ``<image>``.
        image_layouts: instead, the i-th image's own ids (a tiled image's count for its size, a split image's tiles);
            a single layout serves every image.
    """

    tokenizer: TextTokenizer
    template: ChatTemplate
    eos_id: int
    image_token_id: int | None = None
    tokens_per_image: int = 0
    image_layouts: Sequence[Sequence[int]] = ()

    def encode(
        self,
        messages: Sequence[Mapping[str, Any]],
        add_generation_prompt: bool = False,
        max_length: int | None = None,
    ) -> EncodedChat:
        """Ids and labels of ``messages``, from the BOS; ``max_length`` truncates the end, refusing to cut
        through an image's tokens."""
        ids: list[int] = []
        labels: list[int] = []
        images = 0

        def add(pieces: list[int], learn: bool) -> None:
            ids.extend(pieces)
            labels.extend(pieces if learn else [IGNORE_INDEX] * len(pieces))

        if self.tokenizer.bos_id is not None and not self.template.images_first:  # that one writes its own
            add([self.tokenizer.bos_id], False)
        for role, text in turns(messages):
            if role == "assistant":
                add(self._ids(self.template.assistant), False)
                add([*self._ids(self.template.answer.format(text=text)), self.eos_id], True)
                continue
            if self.template.images_first and IMAGE_TOKEN in text:
                count = text.count(IMAGE_TOKEN)
                text = text.replace(f"{IMAGE_TOKEN}\n", "").replace(IMAGE_TOKEN, "")
                ids[:0] = [token for k in range(count) for token in self._image_ids(images + k)]
                labels[:0] = [IGNORE_INDEX] * (len(ids) - len(labels))
                images += count
            pieces = getattr(self.template, role).format(text=text).split(IMAGE_TOKEN)
            for index, piece in enumerate(pieces):
                if index:
                    add(self._image_ids(images), False)
                    images += 1
                add(self._ids(piece), False)
        if add_generation_prompt:
            add(self._ids(self.template.assistant), False)
        return EncodedChat(ids, labels, images).cut(max_length, self.image_token_id)

    def _image_ids(self, index: int) -> list[int]:
        return image_ids(index, self.image_layouts, self.image_token_id, self.tokens_per_image)

    def _ids(self, text: str) -> list[int]:
        if not text:
            return []
        return self.tokenizer.tokenizer.encode(self.tokenizer.canonicalize(text), add_special_tokens=False).ids


def pad_right(rows: list[tuple[list[int], list[int]]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and labels (-100 on padding). Causal attention never looks ahead at padding,
    so training needs no attention mask."""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    for i, (row_ids, row_labels) in enumerate(rows):
        ids[i, : len(row_ids)] = torch.tensor(row_ids)
        labels[i, : len(row_labels)] = torch.tensor(row_labels)
    return ids, labels
