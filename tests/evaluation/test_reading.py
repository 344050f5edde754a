import json

import pytest

from vlmkit.cli import main
from vlmkit.data.docworld import DocWorldConfig, generate_split
from vlmkit.data.records import RecordDataset, write_records
from vlmkit.errors import InputError
from vlmkit.evaluation.reading import evaluate_reading, reading_scores


@pytest.fixture(scope="module")
def clean_pages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("docworld") / "test"
    generate_split(folder, DocWorldConfig(clean=True, kinds=("form", "table")), "test", 2, seed=3, workers=1)
    return folder


def test_clean_pages_are_read_nearly_exactly_and_reported_per_kind(clean_pages):
    dataset = RecordDataset(clean_pages)
    scores = reading_scores(dataset, dataset.records, "ppocr", show_progress=False)
    assert scores["pages"] == 2 and scores["cer"] < 0.05 and scores["word_recall"] > 0.9
    assert set(scores["by_kind"]) <= {"form", "table"} and scores["pages_per_s"] > 0
    assert scores["worst"][0]["cer"] >= scores["worst"][-1]["cer"]


def test_eval_engine_writes_a_report_and_reuses_it(clean_pages, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["eval", "--engine", "ppocr", "--data", str(clean_pages), "--out", str(out), "--limit", "1"]) == 0
    assert "reading  cer" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["model_type"] == "OCR ppocr" and report["tasks"]["reading"]["pages"] == 1
    assert "| reading" not in (out / "report.md").read_text()  # a task heading, then its metrics table
    again = evaluate_reading("ppocr", clean_pages, out, limit=1)  # from the cache
    assert again["tasks"]["reading"] == report["tasks"]["reading"]


def test_a_record_without_ground_truth_text_is_one_line(clean_pages, tmp_path):
    import shutil

    shutil.copytree(clean_pages / "images", tmp_path / "images")
    records = [record.to_dict() for record in RecordDataset(clean_pages).records]
    del records[0]["document"]
    write_records(tmp_path, records)
    dataset = RecordDataset(tmp_path)
    with pytest.raises(InputError, match=r"000000\.png: the record has no `document`"):
        reading_scores(dataset, dataset.records, "ppocr", show_progress=False)


def test_eval_needs_a_model_or_an_engine(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--data", "x"])
    assert "one of the arguments --model --engine is required" in capsys.readouterr().err
