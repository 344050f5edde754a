import random

import pytest

from vlmkit.data.docworld import DocWorldConfig, generate_split
from vlmkit.data.records import Record, RecordDataset
from vlmkit.errors import InputError
from vlmkit.training.recipes import InstructRecipe


def test_instruct_page_text_puts_the_ground_truth_lines_before_the_first_question(tmp_path):
    generate_split(tmp_path, DocWorldConfig(clean=True, kinds=("receipt",)), "train", 1, seed=1, workers=1)
    (record,) = RecordDataset(tmp_path).records
    recipe = InstructRecipe(data=str(tmp_path), init_from="unused", page_text=True, questions_per_turn=2)
    messages = recipe.messages(record, random.Random(0))
    first = messages[0]["content"]
    assert first.startswith("<image>\nPage text: ")
    lines = [line["text"] for line in record.extra["document"]["pages"][0]["lines"]]
    assert " | ".join(lines) in first
    assert sum("Page text:" in m["content"] for m in messages) == 1  # once per conversation
    plain = InstructRecipe(data=str(tmp_path), init_from="unused").messages(record, random.Random(0))
    assert "Page text:" not in plain[0]["content"]


def test_page_text_needs_records_with_a_document():
    recipe = InstructRecipe(data="x", init_from="unused", page_text=True)
    with pytest.raises(InputError, match="no `document`"):
        recipe.messages(Record("a.png", captions=["a cat"]), random.Random(0))


def test_ocr_share_asks_for_the_page_text_in_reading_order(tmp_path):
    generate_split(tmp_path, DocWorldConfig(clean=True, kinds=("letter",)), "train", 1, seed=2, workers=1)
    (record,) = RecordDataset(tmp_path).records
    lines = [line["text"] for line in record.extra["document"]["pages"][0]["lines"]]
    always = InstructRecipe(data=str(tmp_path), init_from="unused", page_text=True, ocr_share=1.0)
    assert always.messages(record, random.Random(0)) == [
        {"role": "user", "content": "<image>\n<OCR>"},
        {"role": "assistant", "content": "\n".join(lines)},
    ]
    half = InstructRecipe(data=str(tmp_path), init_from="unused", ocr_share=0.5)
    kinds = [half.messages(record, random.Random(seed))[0]["content"] == "<image>\n<OCR>" for seed in range(200)]
    assert 70 < sum(kinds) < 130
    no_page = InstructRecipe(data="x", init_from="unused", ocr_share=1.0)
    assert no_page.messages(Record("a.png", captions=["a cat"]), random.Random(0))[1]["content"] == "a cat"


def test_ocr_share_outside_0_1_is_refused():
    from vlmkit.errors import ConfigError

    with pytest.raises(ConfigError, match="ocr_share"):
        InstructRecipe(data="x", init_from="unused", ocr_share=1.5).validate("instruct")
