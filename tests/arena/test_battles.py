import json

import pytest

from vlmkit.arena.battles import Battle, read_battles
from vlmkit.errors import InputError


def test_reads_jsonl_and_json_arrays_ignoring_other_keys(tmp_path):
    rows = [
        {"model_a": "x", "model_b": "y", "winner": "model_a", "tstamp": 1.0, "judge": "j"},
        {"model_a": "y", "model_b": "x", "winner": "tie (bothbad)"},
    ]
    lines = tmp_path / "battles.jsonl"
    lines.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n")
    expected = [Battle("x", "y", "model_a"), Battle("y", "x", "tie (bothbad)")]
    assert read_battles(lines) == expected
    array = tmp_path / "clean_battle.json"
    array.write_text(json.dumps(rows, indent=2))
    assert read_battles(array) == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"model_a": "x", "model_b": "y", "winner": "a"}', "battles.jsonl line 2: 'winner' must be one of"),
        ('{"model_a": "x", "winner": "tie"}', "battles.jsonl line 2: 'model_b' must be a non-empty string"),
        ('{"model_a": "x", "model_b": "x", "winner": "tie"}', "battles.jsonl line 2: 'model_b' must differ"),
        ('{"model_a": "x", "model_b": ', "battles.jsonl line 2: not valid JSON"),
        ("[1, 2]", "battles.jsonl line 2: expected an object"),
    ],
)
def test_a_bad_row_names_the_file_line_and_field(tmp_path, line, message):
    path = tmp_path / "battles.jsonl"
    path.write_text('{"model_a": "x", "model_b": "y", "winner": "tie"}\n' + line + "\n")
    with pytest.raises(InputError, match="^" + str(tmp_path).replace("\\", "\\\\") + "/" + message.replace("(", ".")):
        read_battles(path)


def test_missing_or_empty_files_are_one_line(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_battles(tmp_path / "none.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError, match="holds no battles"):
        read_battles(tmp_path / "empty.jsonl")
