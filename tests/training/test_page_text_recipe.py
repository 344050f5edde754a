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
