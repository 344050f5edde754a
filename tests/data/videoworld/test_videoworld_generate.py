"""VideoWorld folders: the record schema, MP4s that decode to their frames, determinism across workers,
running again after a stop, the compositional split and the CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlmkit.cli import main
from vlmkit.data.records import read_records
from vlmkit.data.videoworld import VideoWorldConfig, generate_split, regenerate
from vlmkit.errors import ConfigError, InputError
from vlmkit.processing.video import FrameSampling, read_video

pytest.importorskip("av")

CONFIG = VideoWorldConfig()


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_split(
        tmp_path_factory.mktemp("vw") / "train", CONFIG, "train", 8, seed=3, workers=1, progress=False
    )


def test_records_name_their_video_frames_events_questions_and_moments(dataset: Path) -> None:
    parsed = read_records(dataset, check_images=True).records
    assert len(parsed) == 8
    spec = json.loads((dataset / "videoworld.json").read_text())
    assert spec["config"]["codec"] in ("libx264", "mpeg4")  # "auto", resolved and recorded
    for record in _records(dataset):
        assert (dataset / record["video"]).is_file()
        assert len(list((dataset / record["frames"]).glob("*.png"))) == CONFIG.frames
        events = record["events"]
        assert 1 <= len(events) <= CONFIG.max_events
        assert all(0 <= e["start"] < e["end"] <= CONFIG.duration for e in events)
        assert all(a["end"] < b["start"] for a, b in itertools.pairwise(events))  # one after another
        moments = {g["query"]: (g["start"], g["end"]) for g in record["grounding"]}
        assert all(moments[e["text"]] == (e["start"], e["end"]) for e in events if e["text"] in moments)
        assert record["captions"][0] == ", then ".join(
            e["text"].replace("the ", "a " if e["object"][0] not in "aeiou" else "an ", 1) if first else e["text"]
            for e, first in zip(events, _first_mentions(events), strict=True)
        )
        assert all(q["answer"] in q["choices"] for q in record["qa"])


def _first_mentions(events: list[dict]) -> list[bool]:
    """Whether each event's object is mentioned for the first time (shapes are unique within a clip)."""
    seen: set[str] = set()
    firsts = []
    for event in events:
        shape = event["object"].split()[-1]
        firsts.append(shape not in seen)
        seen.add(shape)
    return firsts


def test_the_mp4_decodes_to_the_frames_it_was_made_from(dataset: Path) -> None:
    record = _records(dataset)[0]
    frames = read_video(dataset / record["video"], FrameSampling("fps", frames=64, fps=CONFIG.fps))
    assert [f.time for f in frames] == [i / CONFIG.fps for i in range(CONFIG.frames)]
    for number, frame in enumerate(frames):
        truth = np.asarray(Image.open(dataset / record["frames"] / f"{number:03d}.png"), dtype=np.float64)
        assert frame.image.size == (CONFIG.image_size, CONFIG.image_size)
        assert np.abs(np.asarray(frame.image, dtype=np.float64) - truth).mean() < 6.0  # lossy, but close


def test_same_bytes_for_any_worker_count(dataset: Path, tmp_path: Path) -> None:
    parallel = generate_split(tmp_path / "p", CONFIG, "train", 8, seed=3, workers=2, progress=False, chunk_size=3)
    assert _files(parallel) == _files(dataset)


def test_a_stopped_run_is_finished_by_running_it_again(dataset: Path, tmp_path: Path) -> None:
    folder = tmp_path / "again"
    generate_split(folder, CONFIG, "train", 8, seed=3, workers=1, progress=False)
    (folder / "records.jsonl").unlink()
    (folder / _records(dataset)[2]["video"]).unlink()
    generate_split(folder, CONFIG, "train", 8, seed=3, workers=1, progress=False)
    assert _files(folder) == _files(dataset)
    with pytest.raises(InputError, match="other settings"):
        generate_split(folder, CONFIG, "train", 8, seed=4, workers=1, progress=False)


def test_regenerate_from_the_config_file(dataset: Path, tmp_path: Path) -> None:
    copy = regenerate(dataset / "videoworld.json", tmp_path / "copy", workers=1, progress=False)
    assert _files(copy) == _files(dataset)


def test_held_out_pairs_only_in_the_compositional_split(dataset: Path, tmp_path: Path) -> None:
    held = [f"{color} {shape}" for color, shape in CONFIG.held_out]
    texts = json.dumps(_records(dataset))
    assert not any(pair in texts for pair in held)
    folder = generate_split(tmp_path / "c", CONFIG, "compositional", 6, seed=3, workers=1, progress=False)
    for record in _records(folder):
        named = " ".join(e["object"] + " " + e["text"] for e in record["events"])
        assert any(pair in named for pair in held)


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match="image_size"):
        VideoWorldConfig(image_size=63)
    with pytest.raises(ConfigError, match="'frames'"):
        VideoWorldConfig(frames=6, min_events=2)
    with pytest.raises(ConfigError, match="event_kinds"):
        VideoWorldConfig(event_kinds=("explode",))


def test_cli_writes_a_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["data", "video", "--out", str(out), "--n", "2", "--frames", "8", "--fps", "4", "--workers", "1"]) == 0
    assert "wrote 2 clips" in capsys.readouterr().out
    record = _records(out)[0]
    assert record["meta"]["frames"] == 8 and record["meta"]["duration"] == 2.0
    held = tmp_path / "held"
    args = ["data", "video", "--out", str(held), "--n", "2", "--split", "compositional", "--held-out", "red circle"]
    assert main([*args, "--workers", "1"]) == 0
    assert all("red circle" in json.dumps(r["events"]) for r in _records(held))
    assert json.loads((held / "videoworld.json").read_text())["config"]["held_out"] == [["red", "circle"]]


def test_data_show_draws_first_frames_with_captions(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    assert main(["data", "show", str(dataset), "--n", "4", "--out", str(out)]) == 0
    assert Image.open(out).size[0] > CONFIG.image_size
