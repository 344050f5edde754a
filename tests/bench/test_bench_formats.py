"""The published layouts read into samples: VLMEvalKit TSVs (image references, several images, circular copies,
missing options) and MMMU records; a malformed file is one line naming the file, row and field."""

from __future__ import annotations

import json

import pytest

from benchfiles import b64, png, write_tsv
from vlmkit.bench import get_task, read_mmmu, read_tsv
from vlmkit.errors import InputError

RED, BLUE = png((255, 0, 0)), png((0, 0, 255))


def test_mmbench_rows_with_hint_options_circular_copies_and_a_shared_image(tmp_path):
    rows = [
        {"index": 7, "question": "Colour?", "hint": "Look.", "A": "red", "B": "blue", "C": "green", "D": None,
         "answer": "A", "category": "color", "l2-category": "perception", "split": "dev", "image": b64(RED)},
        {"index": 1_000_007, "question": "Colour?", "hint": "nan", "A": "blue", "B": "green", "C": "red", "D": None,
         "answer": "C", "category": "color", "l2-category": "perception", "split": "dev", "image": "7"},
    ]  # fmt: skip
    first, copy = read_tsv(write_tsv(tmp_path / "mmbench.tsv", rows))
    assert first.choices == ("red", "blue", "green") and first.answers == ("A",) and first.hint == "Look."
    assert first.images == (RED,) and copy.images == (RED,)  # "7" is row 7's image, as VLMEvalKit reads it
    assert first.group == copy.group == "7" and copy.hint == ""  # pandas' nan is no hint
    assert first.fields["l2-category"] == "perception" and first.fields["split"] == "dev"


def test_several_images_as_a_list_and_answers_as_a_list(tmp_path):
    rows = [{"index": 0, "question": "Q", "answer": "['ten', '10']", "image": str([b64(RED), b64(BLUE)])}]
    (sample,) = read_tsv(write_tsv(tmp_path / "t.tsv", rows))
    assert sample.images == (RED, BLUE) and sample.answers == ("ten", "10") and sample.choices == ()


def test_questions_about_one_image_share_a_group_however_it_is_stored(tmp_path):
    rows = [
        {"index": 0, "question": "Is it red?", "answer": "Yes", "category": "color", "image": b64(RED)},
        {"index": 1, "question": "Is it blue?", "answer": "No", "category": "color", "image": "0"},
        {"index": 2, "question": "Is it red?", "answer": "Yes", "category": "color", "image": b64(RED)},
        {"index": 3, "question": "Is it red?", "answer": "No", "category": "color", "image": b64(BLUE)},
    ]
    groups = [s.group for s in read_tsv(write_tsv(tmp_path / "mme.tsv", rows))]
    assert groups[0] == groups[1] == groups[2] != groups[3]


def test_image_paths_relative_to_the_file(tmp_path):
    (tmp_path / "a.png").write_bytes(RED)
    row = {"index": 0, "question": "Q", "answer": "x", "image_path": "a.png"}
    (sample,) = read_tsv(write_tsv(tmp_path / "t.tsv", [row]))
    assert sample.images == (tmp_path / "a.png",)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"index": 0, "question": "Q", "A": "x", "B": "y", "answer": "C", "image": b64(RED)}, r"row 2: field 'answer'"),
        ({"index": 0, "question": "Q", "A": "x", "B": None, "C": "z", "answer": "A"}, r"row 2: field 'C': option C"),
        ({"index": 0, "question": "Q", "answer": "A", "image": "not base64!" * 10}, r"row 2: field 'image': expected"),
        ({"index": 0, "question": "Q", "answer": "A", "image": "42"}, r"row 2: field 'image': '42' is neither"),
        ({"index": "", "question": "Q", "answer": "A"}, r"row 2: field 'index'"),
    ],
)
def test_a_malformed_row_names_file_row_and_field(tmp_path, row, message):
    path = write_tsv(tmp_path / "bad.tsv", [row])
    with pytest.raises(InputError, match=f"bad.tsv: {message}"):
        read_tsv(path)


def test_a_missing_column_and_an_empty_file(tmp_path):
    with pytest.raises(InputError, match="field 'answer': missing from the header"):
        read_tsv(write_tsv(tmp_path / "t.tsv", [{"index": 0, "question": "Q"}]))
    (tmp_path / "empty.tsv").write_text("index\tquestion\tanswer\n")
    with pytest.raises(InputError, match=r"empty\.tsv: no rows"):
        read_tsv(tmp_path / "empty.tsv")


def _mmmu_record(**overrides):
    record = {
        "id": "validation_Art_1",
        "question": "Which is older, <image 1> or <image 2>?",
        "options": "['<image 2>', 'the first']",
        "answer": "B",
        "question_type": "multiple-choice",
        "subfield": "Art History",
        "image_1": "one.png",
        "image_2": "two.png",
    }
    return {**record, **overrides}


def test_mmmu_records_json_and_jsonl(tmp_path):
    (tmp_path / "mmmu.json").write_text(json.dumps([_mmmu_record()]))
    lines = [_mmmu_record(id="v_2", question="How many?", options="[]", answer="['3', 'three']",
                          question_type="open", image_2=None)]  # fmt: skip
    (tmp_path / "mmmu.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    (mc,) = read_mmmu(tmp_path / "mmmu.json")
    (open_,) = read_mmmu(tmp_path / "mmmu.jsonl")
    assert mc.choices == ("<image 2>", "the first") and mc.images == (tmp_path / "one.png", tmp_path / "two.png")
    assert mc.category == "Art History" and mc.fields["question_type"] == "multiple-choice"
    assert open_.answers == ("3", "three") and open_.choices == () and open_.images == (tmp_path / "one.png",)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"image_2": None}, r"row 1: field 'image_2': the question shows <image 2>"),
        ({"options": "not a list"}, r"row 1: field 'options'"),
        ({"options": []}, r"row 1: field 'options': a multiple-choice question needs options"),
        ({"question_type": "essay"}, r"row 1: field 'question_type'"),
    ],
)
def test_malformed_mmmu_records(tmp_path, overrides, message):
    (tmp_path / "m.json").write_text(json.dumps([_mmmu_record(**overrides)]))
    with pytest.raises(InputError, match=f"m.json: {message}"):
        read_mmmu(tmp_path / "m.json")


def test_the_benchmarks_own_json_files(tmp_path):
    docvqa = {"dataset_name": "docvqa", "dataset_split": "val", "data": [
        {"questionId": 49153, "question": "What is the total?", "question_types": ["handwritten", "form"],
         "image": "documents/pybv0228_81.png", "docId": 14465, "answers": ["0.28", "$0.28"]}]}  # fmt: skip
    (tmp_path / "val_v1.0.json").write_text(json.dumps(docvqa))
    (doc,) = get_task("docvqa").read(tmp_path / "val_v1.0.json")
    assert doc.index == "49153" and doc.answers == ("0.28", "$0.28") and doc.category == "handwritten"
    assert doc.images == (tmp_path / "documents" / "pybv0228_81.png",)

    textvqa = {"dataset_name": "textvqa", "data": [
        {"question_id": 34602, "question": "what brand?", "image_id": "003a8ae2ef43b901",
         "answers": ["nokia"] * 10}]}  # fmt: skip
    (tmp_path / "TextVQA_0.5.1_val.json").write_text(json.dumps(textvqa))
    (text,) = get_task("textvqa").read(tmp_path / "TextVQA_0.5.1_val.json")
    assert text.images == (tmp_path / "train_images" / "003a8ae2ef43b901.jpg",) and len(text.answers) == 10

    chart = [{"imgname": "41699051005347.png", "query": "What is the peak?", "label": "42"},
             {"imgname": "2.png", "query": "Which year?", "label": "2019"}]  # fmt: skip
    (tmp_path / "test_human.json").write_text(json.dumps(chart))
    first, second = get_task("chartqa").read(tmp_path / "test_human.json")
    assert (first.index, second.index) == ("0", "1") and first.answers == ("42",)
    assert first.images == (tmp_path / "png" / "41699051005347.png",)

    coco = "COCO_val2014_000000310196.jpg"
    pope = [{"question_id": 1, "image": coco, "text": "Is there a snowboard?", "label": "yes"},
            {"question_id": 2, "image": coco, "text": "Is there a dog?", "label": "no"}]  # fmt: skip
    (tmp_path / "coco_pope_random.json").write_text("".join(json.dumps(line) + "\n" for line in pope))  # JSONL
    yes, no = get_task("pope").read(tmp_path / "coco_pope_random.json")
    assert (yes.question, yes.answers, no.answers) == ("Is there a snowboard?", ("yes",), ("no",))
    assert yes.group == no.group


def test_a_json_record_without_its_image_field_names_it(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps([{"query": "Q", "label": "1"}]))
    with pytest.raises(InputError, match=r"c\.json: row 1: field 'imgname': missing \(it names the image\)"):
        get_task("chartqa").read(tmp_path / "c.json")
    (tmp_path / "d.json").write_text(json.dumps({"data": [{"question": "Q", "image": "x.png", "answers": []}]}))
    with pytest.raises(InputError, match=r"d\.json: row 1: field 'questionId': missing"):
        get_task("docvqa").read(tmp_path / "d.json")
    (tmp_path / "e.json").write_text("{not json")
    with pytest.raises(InputError, match=r"e\.json: not JSON, nor JSONL"):
        get_task("pope").read(tmp_path / "e.json")
