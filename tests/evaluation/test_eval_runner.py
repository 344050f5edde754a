"""``vlmkit eval`` for dual encoders: report files, cache reuse, the summary table, and the CLI."""

from __future__ import annotations

import dataclasses
import json

import pytest

from grounding_kit import GridCodec
from testkit import tiny_model
from tiny_vlm import tiny_chat_tokenizer, tiny_decoder_config
from vlmkit.checkpoints import save_pretrained
from vlmkit.cli import main
from vlmkit.errors import InputError
from vlmkit.evaluation import runner
from vlmkit.models import Decoder


def test_report_and_cache(shapes_dataset, tmp_path, monkeypatch):
    model = tiny_model()
    model.image_processor = type(model.image_processor).clip(32)
    report = runner.evaluate(model, shapes_dataset / "val", tmp_path / "out", batch_size=8)
    zero_shot, retrieval = report["tasks"]["zero_shot"], report["tasks"]["retrieval"]
    assert zero_shot["images"] == 16 and zero_shot["classes"] >= 50  # the whole ShapesWorld vocabulary
    assert 0 <= zero_shot["zero_shot_top1"] <= zero_shot["zero_shot_top5"] <= 1
    assert zero_shot["zero_shot_top1"] <= min(zero_shot["zero_shot_color"], zero_shot["zero_shot_shape"])
    assert retrieval["t2i_R@1"] <= retrieval["t2i_R@5"] <= retrieval["t2i_R@10"]
    assert "| t2i_R@1 |" in (tmp_path / "out" / "report.md").read_text()

    calls = []
    monkeypatch.setattr(runner, "retrieval_recall", lambda *a, **k: calls.append(1) or {})
    again = runner.evaluate(model, shapes_dataset / "val", tmp_path / "out", batch_size=8)
    assert again == report and not calls  # served from the cache
    with __import__("torch").no_grad():
        model.logit_scale.add_(1.0)
    runner.evaluate(model, shapes_dataset / "val", tmp_path / "out", batch_size=8)
    assert calls  # other weights: recomputed


def test_eval_cli_prints_a_summary_and_json_on_request(shapes_dataset, tmp_path, capsys):
    model = tiny_model()
    model.image_processor = type(model.image_processor).clip(32)
    save_pretrained(model, tmp_path / "m")
    argv = ["eval", "--model", str(tmp_path / "m"), "--data", str(shapes_dataset / "val"), "--limit", "8"]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out.splitlines()
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["records"] == 8
    assert len(out) < 25 and out[0].startswith("DualEncoder on") and out[1].split() == ["task", "metric", "value"]
    rows = {tuple(line.split()[:2]): line.split()[2] for line in out[2:-1]}
    assert float(rows["zero_shot", "zero_shot_top1"]) == round(report["tasks"]["zero_shot"]["zero_shot_top1"], 4)
    assert rows["retrieval", "images"] == "8" and ("retrieval", "t2i_R@1") in rows
    assert out[-1] == f"full report: {tmp_path / 'r' / 'report.json'} and {tmp_path / 'r' / 'report.md'}"

    assert main([*argv, "--out", str(tmp_path / "r"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == report  # nothing but the report, for scripts


def test_eval_runs_only_the_tasks_asked_for(shapes_dataset, tmp_path, capsys):
    model = tiny_model()
    model.image_processor = type(model.image_processor).clip(32)
    save_pretrained(model, tmp_path / "m")
    argv = ["eval", "--model", str(tmp_path / "m"), "--data", str(shapes_dataset / "val"), "--limit", "4", "--json"]
    assert main([*argv, "--out", str(tmp_path / "r"), "--tasks", "retrieval"]) == 0
    assert list(json.loads(capsys.readouterr().out)["tasks"]) == ["retrieval"]
    assert main([*argv, "--out", str(tmp_path / "r"), "--tasks", "retrieval,vqa"]) == 2
    err = capsys.readouterr().err
    assert "tasks: vqa not among this model's tasks" in err and "zero_shot, retrieval" in err and err.count("\n") == 1


def test_options_a_model_would_ignore_are_refused_in_one_line(shapes_dataset, tmp_path, capsys):
    model = tiny_model()
    model.image_processor = type(model.image_processor).clip(32)
    save_pretrained(model, tmp_path / "m")
    argv = ["eval", "--model", str(tmp_path / "m"), "--data", str(shapes_dataset / "val"), "--limit", "4"]
    with pytest.raises(SystemExit) as stopped:  # an empty list would silently mean every task
        main([*argv, "--tasks", " , "])
    assert stopped.value.code == 2
    assert "--tasks: expected task names" in capsys.readouterr().err
    with pytest.raises(InputError, match="mask_tokenizer: only a grounding VLM"):
        runner.evaluate(model, shapes_dataset / "val", tmp_path / "r", limit=4, mask_tokenizer=GridCodec())


def test_the_cache_key_follows_the_config_as_well_as_the_weights():
    model = tiny_model()
    before = runner.model_fingerprint(model)
    model.config = dataclasses.replace(model.config, logit_scale_init=model.config.logit_scale_init + 1)
    assert runner.model_fingerprint(model) != before


def test_summary_table_keeps_headline_numbers_and_skips():
    report = {
        "model_type": "VisionLanguageModel",
        "data": "d",
        "records": 3,
        "tasks": {
            "vqa": {"accuracy": 0.5, "per_type": {"color": 1.0}, "questions": 6, "examples": [{"q": "a"}]},
            "multiple_choice": {"skipped": "no question has choices"},
        },
    }
    lines = runner.summary_table(report).splitlines()
    assert lines[2:] == ["vqa              accuracy   0.5000", "vqa              questions  6",
                         "multiple_choice  skipped    no question has choices"]  # fmt: skip


def test_eval_refuses_a_text_only_decoder(shapes_dataset, tmp_path):
    with pytest.raises(InputError, match="cannot be evaluated"):
        runner.evaluate(Decoder(tiny_decoder_config(tiny_chat_tokenizer())), shapes_dataset / "val", tmp_path)
