"""`vlmkit eval` on a clip folder: each question, query and caption request reaches the model with its own
clip's sampled frames, and the scores are evaluation.video's."""

from __future__ import annotations

import json
import shutil

import pytest

from tiny_vlm import tiny_vlm
from vlmkit.data.records import RecordDataset
from vlmkit.errors import InputError
from vlmkit.evaluation import runner, video_tasks
from vlmkit.processing.video import FrameSampling, read_video
from vlmkit.processing.video_input import format_moment, grounding_prompt
from vlmkit.tasks.video import VIDEO_CAPTION_PROMPT

pytest.importorskip("av")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from vlmkit.data.videoworld import VideoWorldConfig, generate_split

    folder = tmp_path_factory.mktemp("vw") / "test"
    return generate_split(folder, VideoWorldConfig(image_size=32), "test", 3, seed=1, workers=1, progress=False)


def _oracle(dataset: RecordDataset, sampling: FrameSampling):
    """A stand-in for ask_clips that answers right when it is shown the right clip's frames."""

    def key(frames):
        return tuple((f.time, f.image.tobytes()) for f in frames)

    truth = {}
    for record in dataset.records:
        answers = {qa.question: qa.answer for qa in record.qa or []}
        for g in record.extra["grounding"]:
            answers[grounding_prompt(g["query"])] = format_moment(g["start"], g["end"])
        answers[VIDEO_CAPTION_PROMPT] = record.captions[0]
        truth[key(read_video(dataset.root / record.extra["video"], sampling))] = answers
    assert len(truth) == len(dataset.records)
    asked = []

    def ask(model, questions, config=None, batch_size=8):
        asked.extend(text for _, text in questions)
        return [truth[key(frames)].get(text, "?") for frames, text in questions]

    return ask, asked


def test_an_oracle_scores_perfectly_on_every_task(clips, monkeypatch):
    dataset = RecordDataset(clips)
    ask, asked = _oracle(dataset, FrameSampling())
    monkeypatch.setattr(video_tasks, "ask_clips", ask)
    tasks = video_tasks.video_tasks(tiny_vlm(max_positions=512), dataset, dataset.records)
    qa, grounding, captions = (tasks[name]() for name in ("video_qa", "video_grounding", "video_captioning"))
    assert qa["accuracy"] == 1.0 and qa["count"] == sum(len(r.qa) for r in dataset.records)
    assert set(qa["per_type"]) <= {"direction", "order", "count", "when", "change"}
    # moments are written to two decimals (1.875 -> "1.88"), so a perfect answer keeps an IoU just under 1
    assert grounding["r1@0.5"] == 1.0 and grounding["miou"] > 0.95 and grounding["unparsed"] == 0.0
    assert captions["count"] == 3 and captions["cider"] > 0
    assert len(asked) == qa["count"] + grounding["count"] + 3


def test_a_model_answers_every_prompt_and_bad_moments_are_one_line(clips, tmp_path):
    dataset = RecordDataset(clips)
    result = video_tasks.video_tasks(tiny_vlm(max_positions=512), dataset, dataset.records[:1])["video_grounding"]()
    assert result["count"] == len(dataset.records[0].extra["grounding"]) and 0 <= result["unparsed"] <= 1
    bad = tmp_path / "bad"
    bad.mkdir()
    line = json.loads((clips / "records.jsonl").read_text().splitlines()[0])
    line["grounding"] = [{"query": "a red circle appears", "start": 2.0, "end": 1.0}]
    (bad / "records.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(InputError, match=r"grounding\[0\]: expected a text query and 0 <= start <= end"):
        video_tasks.moments(bad, RecordDataset(bad).records[0])


def test_vlmkit_eval_on_a_clip_folder_runs_the_video_tasks(clips, tmp_path):
    report = runner.evaluate(tiny_vlm(max_positions=512), clips, tmp_path / "out", limit=1, batch_size=4)
    assert list(report["tasks"]) == ["video_qa", "video_grounding", "video_captioning"]
    assert 0 <= report["tasks"]["video_qa"]["accuracy"] <= 1
    assert (tmp_path / "out" / "report.md").is_file()


def test_vlmkit_eval_names_an_unreadable_clip_in_one_line(clips, tmp_path, capsys):
    from vlmkit.checkpoints import save_pretrained
    from vlmkit.cli import main

    folder = tmp_path / "clips"
    shutil.copytree(clips, folder)
    video = folder / RecordDataset(folder).records[0].extra["video"]
    video.write_bytes(b"not a video at all" * 20)
    save_pretrained(tiny_vlm(max_positions=512), tmp_path / "vlm")
    assert main(["eval", "--model", str(tmp_path / "vlm"), "--data", str(folder), "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and str(video) in error and "not a readable video" in error


def test_still_shows_every_frame_as_the_first_with_its_own_time(clips, monkeypatch):
    dataset = RecordDataset(clips)
    shown = []

    def ask(model, questions, config=None, batch_size=8):
        shown.extend(frames for frames, _ in questions)
        return ["?"] * len(questions)

    monkeypatch.setattr(video_tasks, "ask_clips", ask)
    video_tasks.video_tasks(tiny_vlm(max_positions=512), dataset, dataset.records[:1], still=True)["video_qa"]()
    true = read_video(dataset.root / dataset.records[0].extra["video"], FrameSampling())
    assert [f.time for f in shown[0]] == [f.time for f in true]
    assert {f.image.tobytes() for f in shown[0]} == {true[0].image.tobytes()} != {true[1].image.tobytes()}
