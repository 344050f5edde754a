"""`vlmkit train video` on a few generated VideoWorld clips: the conversations, the frames (the same pixels
and times inference shows the model), a loss that falls, exact resume, and the export's frame size."""

from __future__ import annotations

import dataclasses
import random
import shutil

import pytest
import torch

from testkit import TINY_EFFNET
from tiny_vlm import tiny_vlm
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.data.records import RecordDataset
from vlmkit.errors import ConfigError, InputError
from vlmkit.models import VisionLanguageModel
from vlmkit.processing.images import ImagePreprocessor
from vlmkit.processing.video import read_video
from vlmkit.processing.video_input import parse_moment, video_prompt
from vlmkit.training.metrics import read_metrics
from vlmkit.training.recipes import RECIPES
from vlmkit.training.recipes.video import SAMPLING, VideoRecipe, clip_frames, resize_frames, video_conversation
from vlmkit.training.run import run
from vlmkit.training.trainer import TrainConfig

pytest.importorskip("av")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from vlmkit.data.videoworld import VideoWorldConfig, generate_split

    root = tmp_path_factory.mktemp("vw")
    config = VideoWorldConfig(image_size=32)
    generate_split(root / "train", config, "train", 6, seed=0, workers=1, progress=False)
    generate_split(root / "val", config, "val", 2, seed=0, workers=1, progress=False)
    return root


def _vlm(convolutional: bool = False) -> VisionLanguageModel:
    """A tiny VLM with room for 8 frames: a ViT at 32 px (4 tokens a frame), or a small CNN (8 x 8 tokens)."""
    if convolutional:
        return tiny_vlm(1, dataclasses.replace(TINY_EFFNET, num_classes=0), max_positions=512)
    return tiny_vlm(max_positions=512)


def _recipe(clips, model_dir, **train) -> VideoRecipe:
    settings = dict(steps=6, batch_size=3, lr=3e-3, warmup_steps=1, log_every=1, eval_every=0, save_every=3)
    settings.update(train)
    return VideoRecipe(data=str(clips / "train"), init_from=str(model_dir), train=TrainConfig(**settings))


def test_video_is_a_registered_recipe_with_checked_settings():
    assert RECIPES["video"] is VideoRecipe
    with pytest.raises(ConfigError, match="init_from"):
        VideoRecipe(data="x").validate("video")
    with pytest.raises(ConfigError, match="frame_size"):
        VideoRecipe(data="x", init_from="m", frame_size=-1).validate("video")
    with pytest.raises(ConfigError, match="curriculum"):
        VideoRecipe(data="x", init_from="m", curriculum="objects").validate("video")


def test_a_conversation_shows_the_frames_first_and_writes_moments_as_parsed(clips):
    record = next(r for r in RecordDataset(clips / "train").records if r.extra["grounding"])
    times = [0.125, 0.375]
    chat = video_conversation(record, str(clips / "train"), times, random.Random(0), 4, 3, 1.0)
    assert chat[0]["content"].startswith(video_prompt(times, ""))
    assert all(not m["content"].startswith("frame at") for m in chat[1:])
    answers = {m["content"] for m in chat if m["role"] == "assistant"}
    truth = {(g["start"], g["end"]) for g in record.extra["grounding"]}
    moments = [parse_moment(a) for a in answers if "to" in a and parse_moment(a)]
    assert moments and all(any(abs(s - a) < 0.01 and abs(e - b) < 0.01 for a, b in truth) for s, e in moments)
    assert any(a in answers for a in record.captions)  # caption_share 1


def test_training_frames_are_the_frames_inference_shows(clips):
    model = _vlm()
    records, times, pixels = clip_frames(str(clips / "train"), model.image_processor)
    root = RecordDataset(clips / "train").root
    for index in (0, len(records) - 1):
        frames = read_video(root / records[index].extra["video"], SAMPLING)
        assert times[index] == [f.time for f in frames]
        shown = model.image_processor([f.image for f in frames])  # what tasks.chat.respond gives the tower
        assert torch.equal(model.image_processor.normalize(pixels[index]), shown)
    assert pixels.shape == (len(records), SAMPLING.frames, 3, 32, 32)


def test_loss_falls_resume_is_exact_and_the_export_answers(clips, tmp_path):
    torch.manual_seed(0)
    save_pretrained(_vlm(), tmp_path / "vlm")
    straight = run(_recipe(clips, tmp_path / "vlm", steps=12, lr=1e-2), tmp_path / "straight", device="cpu")
    losses = [line["loss"] for line in read_metrics(tmp_path / "straight" / "metrics.jsonl") if "loss" in line]
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3
    recipe = _recipe(clips, tmp_path / "vlm", steps=12, lr=1e-2)
    run(recipe, tmp_path / "resumed", device="cpu", until=6)
    resumed = run(recipe, tmp_path / "resumed", device="cpu", resume=True)
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)
    exported = from_pretrained(tmp_path / "straight" / "model")
    assert isinstance(exported, VisionLanguageModel)


def test_frame_size_gives_a_cnn_fewer_tokens_and_the_export_keeps_it(clips, tmp_path):
    model = _vlm(convolutional=True)
    assert model.tokens_per_image == 64
    resize_frames(model, 16)
    assert model.tokens_per_image == 16 and model.image_processor.size == (16, 16)
    assert model.vision_tokens(torch.zeros(1, 3, 16, 16)).shape[1] == 16
    save_pretrained(model, tmp_path / "small")
    again = from_pretrained(tmp_path / "small")
    assert again.tokens_per_image == model.tokens_per_image and again.image_processor.size == model.image_processor.size
    with pytest.raises(ConfigError, match="convolutional"):
        resize_frames(_vlm(), 16)


def test_a_folder_without_videos_is_one_clear_error(shapes_dataset):
    with pytest.raises(InputError, match="no record names a `video`"):
        clip_frames(str(shapes_dataset / "train"), ImagePreprocessor.clip(32))


def test_a_damaged_clip_stops_training_with_one_line(clips, tmp_path, capsys):
    from vlmkit.cli import main

    folder = tmp_path / "train"
    shutil.copytree(clips / "train", folder)
    video = folder / RecordDataset(folder).records[1].extra["video"]
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    save_pretrained(_vlm(), tmp_path / "vlm")
    argv = ["train", "video", "--data", str(folder), "--from", str(tmp_path / "vlm"), "--out", str(tmp_path / "run")]
    assert main([*argv, "--steps", "1", "--device", "cpu"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and str(video) in error and "cut short" in error
