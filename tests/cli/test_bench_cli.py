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
    asked.clear()
    assert main([*argv, "--batch-size", "12", "--max-new-tokens", "2"]) == 0
    assert asked == [12]  # other settings: nothing reused
    capsys.readouterr()
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


def _score(tmp_path, capsys, task, data, predictions):
    path = tmp_path / f"{task}-predictions.jsonl"
    path.write_text("".join(json.dumps({"index": i, "prediction": p}) + "\n" for i, p in predictions.items()))
    assert main(["bench", "score", "--task", task, "--data", str(data), "--predictions", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_score_each_format_by_its_rule(tmp_path, capsys):
    image = b64(png((10, 200, 10)))
    pope = write_tsv(tmp_path / "pope.tsv", [
        {"index": i, "question": "A dog?", "answer": a, "category": "random", "image": image if i == 0 else "0"}
        for i, a in enumerate(["yes", "no", "yes", "no"])
    ])  # fmt: skip
    scores = _score(tmp_path, capsys, "pope", pope, {0: "Yes.", 1: "No, there is not.", 2: "There is no dog", 3: "Yes"})
    assert scores["accuracy"] == 0.5 and scores["yes_ratio"] == 0.5 and scores["f1"] == 0.5

    mme = write_tsv(tmp_path / "mme.tsv", [
        {"index": i, "question": "Is it green? Please answer yes or no.", "answer": a, "category": c,
         "image": image if i in (0, 2) else str(i - 1)}
        for i, (a, c) in enumerate([("Yes", "color"), ("No", "color"), ("Yes", "OCR"), ("No", "OCR")])
    ])  # fmt: skip
    scores = _score(tmp_path, capsys, "mme", mme, {0: "Yes", 1: "No", 2: "Yes", 3: "Yes"})
    assert scores["score"] == 200 + 50 and scores["per_category"]["OCR"]["accuracy_plus"] == 0

    docs = [{"index": i, "question": "Total?", "answer": str(a), "image": image} for i, a in
            enumerate([["12.5", "12.50"], ["Paris"], ["x^2"]])]  # fmt: skip
    chart = _score(tmp_path, capsys, "chartqa", write_tsv(tmp_path / "c.tsv", docs), {0: "12.9", 1: "paris", 2: "x"})
    assert chart["accuracy"] == pytest.approx(2 / 3)
    anls = _score(tmp_path, capsys, "docvqa", write_tsv(tmp_path / "d.tsv", docs), {0: "12.5", 1: "Pari", 2: "y"})
    assert anls["anls"] == pytest.approx((1 + 0.8) / 3) and anls["accuracy"] == pytest.approx(1 / 3)

    science = write_tsv(tmp_path / "s.tsv", [
        {"index": 0, "question": "Which?", "hint": "A context.", "A": "cat", "B": "dog", "C": None, "answer": "B",
         "image": image},
        {"index": 1, "question": "Which?", "hint": None, "A": "x", "B": "y", "C": "z", "answer": "C", "image": image},
    ])  # fmt: skip
    assert _score(tmp_path, capsys, "scienceqa", science, {0: "B", 1: "I cannot tell"})["accuracy"] == 0.5

    records = [
        {"id": "validation_Math_1", "question": "<image 1> How many?", "options": "[]", "answer": "4",
         "question_type": "open", "subfield": "Math", "image_1": "a.png"},
        {"id": "validation_Art_2", "question": "Which style?", "options": "['Baroque', 'Gothic']", "answer": "B",
         "question_type": "multiple-choice", "subfield": "Art", "image_1": "a.png"},
    ]  # fmt: skip
    (tmp_path / "mmmu.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    mmmu = _score(tmp_path, capsys, "mmmu", tmp_path / "mmmu.jsonl",
                  {"validation_Math_1": "There are 4 of them.", "validation_Art_2": "(B) Gothic"})  # fmt: skip
    assert mmmu["accuracy"] == 1.0 and set(mmmu["per_category"]) == {"Math", "Art"}


def test_bench_tasks_lists_the_registry(capsys):
    assert main(["bench", "tasks"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == sorted(names) and {"mmbench", "mmmu", "pope", "mme", "ocrbench", "chartqa"} <= set(names)
