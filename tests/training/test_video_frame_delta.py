"""`train video --frame-delta`: the model carries the setting, and a training batch gives the decoder exactly the
image rows that inference (``tasks.image_prompts.start``, behind `vlmkit ask`, `vlmkit eval` and the server)
gives it for the same clip."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tiny_vlm import tiny_vlm
from vlmkit.checkpoints import save_pretrained
from vlmkit.data.records import RecordDataset
from vlmkit.errors import ConfigError
from vlmkit.evaluation.video_tasks import video_path
from vlmkit.processing.video import read_video
from vlmkit.processing.video_input import video_prompt
from vlmkit.tasks.chat import chat_encoder
from vlmkit.tasks.image_prompts import image_inputs, start
from vlmkit.training.recipes.video import SAMPLING, VideoRecipe
from vlmkit.training.trainer import TrainConfig

pytest.importorskip("av")


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    from vlmkit.data.videoworld import VideoWorldConfig, generate_split

    root = tmp_path_factory.mktemp("vw_delta")
    generate_split(root / "train", VideoWorldConfig(image_size=32), "train", 2, seed=1, workers=1, progress=False)
    return root / "train"


def _inference_rows(model, frames) -> torch.Tensor:
    """The decoder's input rows at a clip's image tokens when the clip is asked about as `vlmkit ask` asks."""
    text = video_prompt([frame.time for frame in frames], "which way does it move?")
    prompt = chat_encoder(model).encode([{"role": "user", "content": text}], add_generation_prompt=True).input_ids
    ids, _, embeds, _ = start(model, [prompt], image_inputs(model, [frame.image for frame in frames]), 1)
    return embeds[ids == model.config.image_token_id]


@pytest.mark.parametrize("mode", ["previous", "first"])
def test_a_training_batch_and_inference_give_the_decoder_the_same_frames(clip_folder, tmp_path, mode):
    torch.manual_seed(0)
    save_pretrained(tiny_vlm(max_positions=512), tmp_path / "vlm")
    recipe = VideoRecipe(
        data=str(clip_folder), init_from=str(tmp_path / "vlm"), frame_delta=mode, train=TrainConfig(batch_size=2)
    )
    prepared = recipe.prepare()
    model, batches = prepared.model.eval(), prepared.batches
    assert model.config.frame_delta == mode
    items = batches.draws.items(0, 0, 2, 0, 1)
    batch = batches.batch(0, 0, 2, 0, 1)
    image = model.config.image_token_id
    with torch.no_grad():  # as forward() reads cached tokens (kept in float16 on disk)
        trained = model.embed(batch.input_ids, model.projector(batch.vision_tokens.float()))
    root = RecordDataset(clip_folder).root
    plain = dataclasses.replace(model.config, frame_delta="none")
    for row, item in enumerate(items):
        frames = read_video(video_path(root, batches.records[item]), SAMPLING)
        shown = _inference_rows(model, frames)
        torch.testing.assert_close(trained[row][batch.input_ids[row] == image], shown, atol=1e-2, rtol=1e-2)
        model.config, config = plain, model.config
        whole = _inference_rows(model, frames).view(SAMPLING.frames, model.tokens_per_image, -1)
        model.config = config
        reference = whole[:-1] if mode == "previous" else whole[:1]
        expected = torch.cat([whole[:1], whole[1:] - reference]).flatten(0, 1)
        torch.testing.assert_close(shown, expected, atol=1e-5, rtol=1e-5)
        assert (shown - whole.flatten(0, 1)).abs().max() > 0.1  # so the tolerance above tells the two apart


def test_keep_leaves_the_model_as_it_came_and_a_bad_mode_is_refused(clip_folder, tmp_path):
    model = tiny_vlm(max_positions=512)
    model.config = dataclasses.replace(model.config, frame_delta="first")
    save_pretrained(model, tmp_path / "vlm")
    prepared = VideoRecipe(data=str(clip_folder), init_from=str(tmp_path / "vlm")).prepare()
    assert prepared.model.config.frame_delta == "first"
    with pytest.raises(ConfigError, match="frame_delta: expected one of"):
        VideoRecipe.from_dict({"data": "x", "init_from": "m", "frame_delta": "last"})
