"""``video``: an image VLM taught to answer questions about clips, caption them and say when things happen.

A clip reaches the model as it does at inference (``tasks.video``): the frames ``processing.video`` samples
from the MP4 (8 uniform, ``FrameSampling()``, decoded once per clip at the start of the run), each resized by
the model's own image processor and introduced in the first user turn by its time ("frame at 0.125s:
<image>", ``video_prompt``). A training conversation mixes the clip's questions (open answers, as
``vlmkit eval`` asks them), grounding turns (``grounding_prompt(query)`` -> ``format_moment``: "1.25 to
1.88", the form ``parse_moment`` reads back) and, in ``caption_share`` of them, a caption request.

Per-frame cost is the model's ``tokens_per_image``. A CNN tower reads any input size, so ``frame_size``
gives frames fewer tokens by resizing them smaller (128 px: EfficientNet's head map is 4 x 4 = 16 tokens
instead of 7 x 7 = 49 at 224), which keeps 8 frames and a conversation inside a small decoder's positions;
the exported model carries the new size, so inference resizes alike. While the tower is frozen its tokens
are computed once per frame and cached (``training.vision_cache``). ``frame_delta`` sets the model's own
``frame_delta`` (``models.frame_delta``: later frames as differences), so it too is kept in the saved model.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from vlmkit.checkpoints import from_pretrained
from vlmkit.config.base import option
from vlmkit.data.records import Record, RecordDataset
from vlmkit.data.sources import PreloadedImages
from vlmkit.errors import ConfigError, InputError
from vlmkit.evaluation.video_tasks import is_video_record, moments, video_path, video_tasks
from vlmkit.models import VisionLanguageModel
from vlmkit.models.efficientnet import EfficientNet
from vlmkit.processing.images import ImagePreprocessor
from vlmkit.processing.video import FrameSampling, read_video
from vlmkit.processing.video_input import format_moment, grounding_prompt, video_prompt
from vlmkit.progress import progress
from vlmkit.tasks.chat import chat_encoder
from vlmkit.tasks.video import VIDEO_CAPTION_PROMPT
from vlmkit.training.batches import ChatBatch
from vlmkit.training.objective import Prepared
from vlmkit.training.objectives import NextTokenObjective
from vlmkit.training.recipes.chat import ChatBatches, ConversationRecipe, Messages
from vlmkit.training.vision_cache import frozen_vision_tokens

SAMPLING = FrameSampling()  # the frames `vlmkit ask clip.mp4` and `vlmkit eval` show a model


def video_conversation(
    record: Record,
    root: str,
    times: list[float],
    rng: random.Random,
    questions: int,
    grounding_turns: int,
    caption_share: float,
) -> Messages:
    """A multi-turn chat about a clip whose sampled frames are at ``times``: up to ``questions`` of its
    questions and ``grounding_turns`` of its moments in random order, and in ``caption_share`` of the chats
    a caption request; the frames come with the first user turn, as ``video_prompt`` writes them."""
    turns = [(qa.question, qa.answer) for qa in rng.sample(record.qa or [], min(questions, len(record.qa or [])))]
    found = moments(root, record)
    for query, start, end in rng.sample(found, min(grounding_turns, len(found))):
        turns.append((grounding_prompt(query), format_moment(start, end)))
    rng.shuffle(turns)
    if record.captions and (not turns or rng.random() < caption_share):
        turns.insert(rng.randrange(len(turns) + 1), (VIDEO_CAPTION_PROMPT, rng.choice(record.captions)))
    messages: Messages = []
    for index, (question, answer) in enumerate(turns):
        content = video_prompt(times, question) if index == 0 else question
        messages += [{"role": "user", "content": content}, {"role": "assistant", "content": answer}]
    return messages


def clip_frames(
    folder: str, processor: ImagePreprocessor, sampling: FrameSampling = SAMPLING
) -> tuple[list[Record], list[list[float]], torch.Tensor]:
    """A clip folder's records that name a video, each clip's sampled frame times, and the frames as the
    processor's uint8 ``(clips, frames, 3, H, W)``: ``processor(...)`` of ``read_video``'s images, exactly
    what inference feeds the tower, minus the normalisation done per batch."""
    dataset = RecordDataset(folder)
    records = [r for r in dataset.records if is_video_record(r)]
    if not records:
        raise InputError(f"{folder}: no record names a `video` (expected a clip folder such as `vlmkit data video`'s)")
    times, pixels = [], []
    for record in progress(records, desc="video frames", unit="clip"):
        frames = read_video(video_path(dataset.root, record), sampling)
        if len(frames) != sampling.frames:
            raise InputError(
                f"{video_path(dataset.root, record)}: gave {len(frames)} frames, expected {sampling.frames} "
                "(a clip shorter than the frame budget)"
            )
        times.append([frame.time for frame in frames])
        pixels.append(processor.to_uint8([frame.image for frame in frames]))
    return records, times, torch.stack(pixels)


def resize_frames(model: VisionLanguageModel, side: int) -> None:
    """Make a CNN-tower VLM read ``side`` x ``side`` images (its token grid, and so its tokens per image,
    follow); the weights are unchanged."""
    if not isinstance(model.vision, EfficientNet) or model.image_processor is None:
        raise ConfigError("frame_size: only a VLM with a convolutional tower (and an image processor) reads any size")
    vision = dataclasses.replace(model.config.vision, image_size=side)
    config = dataclasses.replace(model.config, vision=vision)
    config.validate("VideoRecipe.frame_size")
    model.vision.config, model.config = vision, config  # type: ignore[assignment]
    model.image_processor = dataclasses.replace(model.image_processor, size=(side, side))


class VideoBatches(ChatBatches):
    """``ChatBatches`` whose records are clips of ``F`` frames each: ``images`` hold ``(clips, F, 3, H, W)``
    and a batch hands the model its clips' frames in order, ``B * F`` images (or their cached tokens)."""

    def batch(self, epoch: int, index: int, micro_batch: int, rank: int, world_size: int) -> ChatBatch:
        clips: torch.Tensor = self.images.all_pixels  # type: ignore[union-attr]
        if not self.train_vision and self.vision_tokens is None:
            flat = frozen_vision_tokens(self.model, clips.flatten(0, 1))  # type: ignore[arg-type]
            self.vision_tokens = flat.unflatten(0, clips.shape[:2]).flatten(1, 2)  # one row of F * T tokens a clip
        batch = super().batch(epoch, index, micro_batch, rank, world_size)
        if batch.vision_tokens is not None:
            per_frame = batch.vision_tokens.unflatten(1, (clips.shape[1], -1)).flatten(0, 1)
            return dataclasses.replace(batch, vision_tokens=per_frame)
        return dataclasses.replace(batch, pixels=batch.pixels.flatten(0, 1))  # type: ignore[union-attr]


@dataclass
class VideoRecipe(ConversationRecipe):
    """Video QA, captions and temporal grounding on a clip folder, from an image VLM."""

    name: ClassVar[str] = "video"
    summary: ClassVar[str] = "video QA, captions and temporal grounding on clips (e.g. VideoWorld), from an image VLM"

    init_from: str = option("", "the image VLM to start from (`train align` or `train instruct`)", flag="--from")
    frame_size: int = option(0, "resize frames to this side for a CNN tower: fewer tokens per frame (0: the model's)")
    frame_delta: Literal["keep", "none", "previous", "first"] = option(
        "keep", "later frames as their change since the previous or the first frame (keep: the model's setting)"
    )
    grounding_turns: int = option(2, "grounding turns (when does X happen? -> start to end) per conversation")
    caption_share: float = option(0.5, "share of training conversations that also ask for a caption", research=True)
    train_vision: bool = option(False, "unfreeze the vision tower")
    eval_images: int = option(50, "held-out clips scored (QA and grounding) at each evaluation")

    def validate(self, where: str) -> None:
        super().validate(where)
        if not self.init_from:
            raise ConfigError(f"{where}.init_from: the video recipe starts from an image VLM (--from)")
        if self.frame_size < 0:
            raise ConfigError(f"{where}.frame_size: a side in pixels >= 0, got {self.frame_size}")
        if self.grounding_turns < 0:
            raise ConfigError(f"{where}.grounding_turns: must be >= 0, got {self.grounding_turns}")
        if self.data_mode == "stream":
            raise ConfigError(f"{where}.data_mode: clips are decoded once into memory (memory or auto)")
        if self.curriculum:
            raise ConfigError(f"{where}.curriculum: orders image scenes by their objects; clips are drawn shuffled")

    def prepare(self) -> Prepared:
        torch.manual_seed(self.train.seed)
        model = from_pretrained(self.init_from)
        if not isinstance(model, VisionLanguageModel) or model.image_processor is None:
            raise InputError(f"{self.init_from}: --from needs a VLM with an image processor (e.g. `train align`'s)")
        if self.frame_size:
            resize_frames(model, self.frame_size)
        if self.frame_delta != "keep":
            model.config = dataclasses.replace(model.config, frame_delta=self.frame_delta)
            model.config.validate("VideoRecipe.frame_delta")
        model.vision.requires_grad_(self.train_vision)
        records, times, pixels = clip_frames(self.data, model.image_processor)
        images = model.tokens_per_image * SAMPLING.frames
        if self.max_length <= images:
            raise ConfigError(
                f"VideoRecipe.max_length: {self.max_length} tokens cannot hold a clip's {SAMPLING.frames} frames of "
                f"{model.tokens_per_image} tokens; raise it or set a smaller frame_size"
            )
        frame_times = {id(r): t for r, t in zip(records, times, strict=True)}
        root = str(RecordDataset(self.data).root)

        def messages(record: Record, rng: random.Random) -> Messages:
            return video_conversation(
                record,
                root,
                frame_times[id(record)],
                rng,
                self.questions_per_turn,
                self.grounding_turns,
                self.caption_share,
            )

        batches = VideoBatches(
            records,
            PreloadedImages(records, pixels),
            chat_encoder(model),
            messages,
            self.train.seed,
            self.max_length,
            model,
            self.train_vision,
        )
        return Prepared(model.train(), NextTokenObjective(), batches, self._evaluation())

    def _evaluation(self) -> Callable[[nn.Module], dict[str, float]] | None:
        """Held-out QA accuracy (overall and per type) and grounding mIoU / R@1 on ``eval_images`` clips."""
        if not self.eval_data:
            return None
        dataset = RecordDataset(self.eval_data)
        records = [r for r in dataset.records if is_video_record(r)][: self.eval_images]

        def evaluate(model: nn.Module) -> dict[str, float]:
            tasks = video_tasks(model, dataset, records)  # type: ignore[arg-type]
            qa, grounding = tasks["video_qa"](), tasks["video_grounding"]()
            scores = {}
            if "accuracy" in qa:
                scores = {"video_qa": qa["accuracy"], **{f"video_qa_{k}": v for k, v in qa["per_type"].items()}}
            if "miou" in grounding:
                scores |= {"grounding_miou": grounding["miou"], "grounding_r1@0.5": grounding["r1@0.5"]}
            return scores

        return evaluate
