"""Prompt formats shared by training, evaluation and inference: the image placeholder and multiple choice."""

from __future__ import annotations

import pytest

from vlmkit.errors import InputError
from vlmkit.evaluation import MultipleChoice, circular_variants
from vlmkit.processing.chat import (
    IMAGE_TOKEN,
    LETTERS,
    MULTIPLE_CHOICE_INSTRUCTION,
    lettered_options,
    multiple_choice_prompt,
    with_image,
)


def test_with_image_puts_the_placeholder_on_its_own_line_first() -> None:
    assert with_image("what colour is it?") == "<image>\nwhat colour is it?"
    assert with_image("") == f"{IMAGE_TOKEN}\n"


def test_with_image_keeps_a_placeholder_the_caller_placed() -> None:
    assert with_image("compare <image> with the sky") == "compare <image> with the sky"


def test_lettered_options() -> None:
    assert lettered_options(["red", "dark blue"]) == "A. red\nB. dark blue"
    assert lettered_options([]) == ""
    assert lettered_options([str(i) for i in range(26)]).splitlines()[-1] == "Z. 25"
    with pytest.raises(InputError, match="at most 26"):
        lettered_options([str(i) for i in range(27)])


def test_multiple_choice_prompt_format() -> None:
    prompt = multiple_choice_prompt("What colour is the circle?", ("red", "green", "blue"))
    assert prompt == "What colour is the circle?\nA. red\nB. green\nC. blue\nAnswer with the option's letter."
    assert prompt.endswith(MULTIPLE_CHOICE_INSTRUCTION)


def test_letters_run_from_a_to_z() -> None:
    assert LETTERS == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def test_circular_eval_asks_in_the_training_format() -> None:
    question = MultipleChoice("q", "Which shape?", ("circle", "square", "triangle"), answer=1)
    for variant in circular_variants(question):
        assert variant.prompt() == multiple_choice_prompt(question.question, variant.choices)
        assert variant.prompt_options() == lettered_options(variant.choices)


def test_models_share_the_chat_constants() -> None:
    from vlmkit.models import decoder, vlm
    from vlmkit.processing import chat

    assert vlm.IMAGE_TOKEN is chat.IMAGE_TOKEN == "<image>"
    assert decoder.IGNORE_INDEX == chat.IGNORE_INDEX == -100
