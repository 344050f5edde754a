"""``vlmkit bench``, ``bench score`` and ``leaderboard`` end to end, and the ShapesWorld check: its MMBench export
scored through ``vlmkit bench`` gives the CircularEval ``vlmkit eval`` gives, on the same model."""

from __future__ import annotations

import json

import pytest

from benchfiles import b64, letter_vlm, png, write_tsv
from vlmkit.checkpoints import save_pretrained
from vlmkit.cli import main


def test_shapesworld_mmbench_export_scores_as_vlmkit_eval(shapes_dataset, tmp_path, capsys):
    """``vlmkit eval``'s multiple-choice figures come from ``generative_tasks(...)["multiple_choice"]``, called here
    alone (the whole eval also captions, which only costs time)."""
    from vlmkit.data.records import RecordDataset
    from vlmkit.evaluation.generative import generative_tasks

    model = letter_vlm()
    save_pretrained(model, tmp_path / "m")
    dataset = RecordDataset(shapes_dataset / "val")
    records = dataset.records[:4]
    expected = generative_tasks(model, dataset, records, batch_size=64)["multiple_choice"]()
    assert main(["data", "mmbench", str(dataset.root), "--out", str(tmp_path / "mmbench.tsv")]) == 0
    capsys.readouterr()
    questions = sum(1 for record in records for qa in record.qa or [] if qa.choices)  # the first 4 images' questions
    argv = ["bench", "--task", "mmbench", "--data", str(tmp_path / "mmbench.tsv"), "--model", str(tmp_path / "m")]
    argv += ["--limit", str(questions), "--max-new-tokens", "4", "--batch-size", "64", "--out", str(tmp_path / "b")]
    assert main([*argv, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["tasks"]["mmbench"]
    assert got["metrics"]["questions"] == expected["questions"] >= 8
    assert 0 < expected["plain_accuracy"] < 1 and expected["unanswered_rate"] < 0.9  # the model does answer
    assert got["metrics"]["circular_accuracy"] == expected["circular_accuracy"]
    assert got["metrics"]["accuracy"] == expected["plain_accuracy"]
    assert got["metrics"]["unanswered_rate"] == expected["unanswered_rate"]
    per_category = {name: m["circular_accuracy"] for name, m in got["per_category"].items()}
    assert per_category == expected["per_category_circular"]


def _mmbench_file(tmp_path):
    image = b64(png((200, 30, 30)))
    rows = [
        {"index": i, "question": f"Question {i}?", "A": "red", "B": "blue", "C": "green", "answer": "ABC"[i % 3],
         "category": "color" if i % 2 else "shape", "image": image if i == 0 else "0"}
        for i in range(4)
    ]  # fmt: skip
    return write_tsv(tmp_path / "mmbench.tsv", rows)


def test_bench_caches_resumes_and_writes_results(tmp_path, capsys, monkeypatch):
    from vlmkit.bench import backends

    save_pretrained(letter_vlm(), tmp_path / "m")
    data = _mmbench_file(tmp_path)
    argv = [
        "bench",
        "--task",
        "mmbench",
        "--data",
        str(data),
        "--model",
        str(tmp_path / "m"),
        "--out",
        str(tmp_path / "r"),
    ]
    assert main([*argv, "--limit", "2"]) == 0
    lines = (tmp_path / "r" / "mmbench" / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(line)["index"] for line in lines] == ["0", "1000000", "2000000", "1", "1000001", "2000001"]
    out = capsys.readouterr().out
    assert out.startswith("mmbench (6 samples): circular_accuracy") and "results.md" in out

    asked = []
    real = backends.VlmkitBackend.answer
    monkeypatch.setattr(backends.VlmkitBackend, "answer", lambda self, p, n: asked.append(len(p)) or real(self, p, n))
    with (tmp_path / "r" / "mmbench" / "predictions.jsonl").open("a") as log:
        log.write('{"index": "3", "predic')  # a line cut short by a crash
    assert main([*argv, "--batch-size", "4", "--json"]) == 0
    assert asked == [4, 2]  # only the 6 rotations of questions 2 and 3: the first run's 6 were cached
    results = json.loads(capsys.readouterr().out)
    mmbench = results["tasks"]["mmbench"]
    assert mmbench["samples"] == 12 and set(mmbench["per_category"]) == {"color", "shape"}
    markdown = (tmp_path / "r" / "results.md").read_text()
    assert "| **all** |" in markdown and "| color |" in markdown and "circular_accuracy" in markdown

    runs = [str(tmp_path / "r"), str(tmp_path / "r" / "results.json")]
    assert main(["leaderboard", *runs, "--png", str(tmp_path / "c.png"), "--out", str(tmp_path / "board.md")]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[:2] == ["| model | mmbench circular_accuracy |", "| --- | --- |"]
    assert table[2].startswith("| m (vlmkit) | ") and len(table) == 5 and table[4].startswith("chart: ")
    assert (tmp_path / "board.md").read_text().splitlines() == table[:4]
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_score_prints_json_for_a_predictions_file(tmp_path, capsys):
    data = _mmbench_file(tmp_path)
    answers = {0: "A", 1: "B", 2: "C", 3: "A"}  # question 3's answer is A: right only in its first order
    lines = []
    for question, letter in answers.items():
        for rotation in range(3):
            right = "ABC"[("ABC".index("ABC"[question % 3]) - rotation) % 3]
            lines.append({"index": question + rotation * 1_000_000, "prediction": right if question < 3 else letter})
    predictions = tmp_path / "p.jsonl"
    predictions.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    argv = ["bench", "score", "--task", "mmbench", "--data", str(data), "--predictions", str(predictions)]
    assert main([*argv, "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["circular_accuracy"] == 0.75 and scores["accuracy"] == 1.0
    assert main(argv) == 0 and "circular_accuracy" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--task", "nope", "--data", "x.tsv", "--model", "m"], "'nope' is not a benchmark task"),
        (["--task", "pope", "mme", "--data", "x.tsv", "--model", "m"], "expected one file per --task"),
        (["--task", "pope"], "bench needs --task, --data and --model"),
        (["score", "--task", "pope", "--data", "MISSING.tsv", "--predictions", "p.jsonl"], "MISSING.tsv: cannot read"),
    ],
)
def test_bad_input_is_one_line(extra, message, capsys):
    assert main(["bench", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_broken_predictions_file_names_its_line(tmp_path, capsys):
    data = _mmbench_file(tmp_path)
    (tmp_path / "p.jsonl").write_text('{"index": 0, "prediction": "A"}\n{"index": 1}\n')
    assert (
        main(["bench", "score", "--task", "mmbench", "--data", str(data), "--predictions", str(tmp_path / "p.jsonl")])
        == 2
    )
    assert "p.jsonl: line 2: expected" in capsys.readouterr().err
