"""What the generative recipes (``lm``, ``align``, ``instruct``) share: training conversations, the batches
built from them, and the held-out evaluation of a VLM.

One training item is one record with one conversation, drawn from (seed, epoch, item), so a resumed
run sees the same data. Images come through the one data path (``data.sources``) when each is one fixed-size
crop; while the vision tower is frozen, its tokens are computed once per image and reused
(``training.vision_cache``). Images whose processor lays them out one by one (Qwen2-VL keeps their own size,
LLaVA-NeXT tiles them, Idefics3 splits them) are processed per batch instead, each conversation laid out for its
own image (``ProcessedChatBatches``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from vlmkit.config.base import option
from vlmkit.data.records import Record, RecordDataset
from vlmkit.data.sampling import Draws, epoch_order
from vlmkit.data.sources import ImageRecords, PreloadedImages, ShardStream, is_folder, open_images, scan_records
from vlmkit.errors import ConfigError, InputError
from vlmkit.evaluation.generative import generative_tasks
from vlmkit.models import VisionLanguageModel
from vlmkit.processing.chat import CAPTION_PROMPT, LETTERS, ChatEncoder, multiple_choice_prompt, pad_right, with_image
from vlmkit.processing.images import ImageSource
from vlmkit.tasks.chat import chat_encoder, images_encoder
from vlmkit.tasks.image_prompts import IMAGE_ARGUMENTS, ImageModel, image_inputs, joined_inputs
from vlmkit.training.batches import ChatBatch
from vlmkit.training.curriculum import CURRICULA, ObjectCurriculum
from vlmkit.training.recipes.base import Recipe
from vlmkit.training.vision_cache import frozen_vision_tokens

Messages = list[dict[str, str]]


def has_text(record: Record) -> bool:
    return bool(record.captions or record.qa)


def conversation(record: Record, rng: random.Random, questions: int, caption_share: float = 1.0) -> Messages:
    """A multi-turn chat about ``record``'s image: a random mix of its questions (half of those with
    choices asked as multiple choice, answered by letter) and, in ``caption_share`` of the chats, a
    caption request; never empty while the record has a caption or a question."""
    turns: list[tuple[str, str]] = []
    for qa in rng.sample(record.qa or [], min(questions, len(record.qa or []))):
        if qa.choices and qa.answer in qa.choices and rng.random() < 0.5:
            choices = rng.sample(qa.choices, len(qa.choices))
            turns.append((multiple_choice_prompt(qa.question, choices), LETTERS[choices.index(qa.answer)]))
        else:
            turns.append((qa.question, qa.answer))
    if record.captions and (caption_share >= 1 or rng.random() < caption_share or not turns):
        turns.insert(rng.randrange(len(turns) + 1), (CAPTION_PROMPT, rng.choice(record.captions)))
    if not turns and record.qa:  # a chat needs one turn: a record without captions, asked no question
        qa = rng.choice(record.qa)
        turns.append((qa.question, qa.answer))
    messages = []
    for question, answer in turns:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return messages


def image_first(messages: Messages) -> Messages:
    """``messages`` with the image placed before the first user turn."""
    return [dict(messages[0], content=with_image(messages[0]["content"])), *messages[1:]]


@dataclass
class ChatRecipe(Recipe):
    """Settings of every recipe that trains on tokenised chats."""

    max_length: int = option(384, "longest training sequence in tokens (longer chats are cut)", research=True)
    eval_images: int = option(100, "held-out images scored at each evaluation")
    curriculum: str = option(
        "", "order the data: `objects` draws scenes of one object first, growing to the largest", research=True
    )
    curriculum_steps: int = option(
        0, "optimizer steps over which the curriculum grows to the whole dataset (0: all the run's)", research=True
    )

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.eval_data and not is_folder(self.eval_data):
            raise ConfigError(f"{where}.eval_data: a VLM's evaluation reads a dataset folder (records.jsonl + images)")
        if self.curriculum and self.curriculum not in CURRICULA:
            raise ConfigError(f"{where}.curriculum: expected one of {', '.join(CURRICULA)}, got {self.curriculum!r}")
        if self.curriculum_steps < 0 or (self.curriculum_steps and not self.curriculum):
            raise ConfigError(f"{where}.curriculum_steps: a number of steps >= 0, with a curriculum set")

    def data_curriculum(self, records: list[Record]) -> ObjectCurriculum | None:
        """The order ``curriculum`` asks for over ``records`` (None: the plain shuffled epochs)."""
        if not self.curriculum:
            return None
        steps = self.curriculum_steps or self.train.steps
        return ObjectCurriculum.of_records(records, steps, self.train.seed, self.train.grad_accum)

    def messages(self, record: Record, rng: random.Random) -> Messages:
        """The training conversation about ``record``."""
        raise NotImplementedError

    def keep(self, record: Record) -> bool:
        """Whether ``record`` gives a training conversation."""
        return has_text(record)

    def image_chat_batches(self, model: ImageModel, train_vision: bool) -> ChatBatches | ProcessedChatBatches:
        """Batches of this recipe's conversations about the data's images, for ``model``."""
        if not one_crop_per_image(model):
            records, paths, locations = scan_records(self.data, self.keep)
            if locations or not records:
                raise InputError(f"{self.data}: this model trains on a dataset folder with records to train on")
            if self.curriculum:
                raise ConfigError("curriculum: not supported for a model whose images are laid out one by one")
            return ProcessedChatBatches(records, paths, model, self.messages, self.train.seed, self.max_length)
        # A frozen tower's tokens are computed for every image at once (and cached), so auto means memory there.
        mode = "memory" if self.data_mode == "auto" and not train_vision else self.data_mode
        images = open_images(
            self.data,
            model.image_processor,  # type: ignore[arg-type]
            self.keep,
            mode=mode,
            buffer=self.shuffle_buffer,
        )
        if self.curriculum and isinstance(images, ShardStream):
            raise ConfigError("curriculum: draws records out of order, which needs a dataset folder, not shards")
        encoder = chat_encoder(model)
        return ChatBatches(
            images.records,
            images,
            encoder,
            self.messages,
            self.train.seed,
            self.max_length,
            model,
            train_vision,
            self.data_curriculum(images.records),
        )


@dataclass
class ConversationRecipe(ChatRecipe):
    """Settings of the recipes that train on multi-turn question-and-caption chats (``lm``, ``instruct``)."""

    questions_per_turn: int = option(4, "question turns per training conversation", research=True)
    caption_share: float = option(1.0, "share of training conversations that also ask for a caption", research=True)

    def validate(self, where: str) -> None:
        super().validate(where)
        if not 0 <= self.caption_share <= 1:
            raise ConfigError(f"{where}.caption_share: expected a share in [0, 1], got {self.caption_share}")
        if self.questions_per_turn < 0:
            raise ConfigError(f"{where}.questions_per_turn: must be >= 0, got {self.questions_per_turn}")

    def messages(self, record: Record, rng: random.Random) -> Messages:
        return conversation(record, rng, self.questions_per_turn, self.caption_share)


class ChatBatches:
    """Tokenised conversations with labels on the answers only, and the images they are about.

    ``images`` is None for a text-only decoder. A VLM whose tower is frozen (``train_vision`` False)
    reads the tower's cached tokens instead of pixels; those are computed for every image at once, so
    that needs the images in memory. A ``curriculum`` picks each micro-batch's records in place of the
    epoch's shuffled order.
    """

    def __init__(
        self,
        records: list[Record],
        images: ImageRecords | None,
        encoder: ChatEncoder,
        messages: Callable[[Record, random.Random], Messages],
        seed: int,
        max_length: int,
        model: nn.Module,
        train_vision: bool = False,
        curriculum: ObjectCurriculum | None = None,
    ) -> None:
        self.records, self.images, self.encoder, self.messages = records, images, encoder, messages
        self.curriculum = curriculum
        decoder = getattr(model.config, "decoder", model.config)
        # A chat longer than the decoder's positions would fail in the forward pass: cut it here instead.
        max_length = min(max_length, decoder.max_positions)  # type: ignore[union-attr]
        self.seed, self.max_length, self.model, self.train_vision = seed, max_length, model, train_vision
        self.draws = Draws(
            (lambda epoch: images.order(seed, epoch))
            if images is not None
            else (lambda epoch: epoch_order(len(records), seed, epoch))
        )
        self.vision_tokens: torch.Tensor | None = None  # a frozen tower's output per image, built on first use
        if images is not None and not train_vision and not isinstance(images, PreloadedImages):
            raise ConfigError(
                "data_mode: a frozen vision tower's tokens are computed for all images at once, which needs "
                "data_mode 'memory' (or train_vision)"
            )

    def batches_per_epoch(self, micro_batch: int, world_size: int) -> int:
        return len(self.records) // (micro_batch * world_size)

    def batch(self, epoch: int, index: int, micro_batch: int, rank: int, world_size: int) -> ChatBatch:
        if self.curriculum is not None:
            micro_step = epoch * self.batches_per_epoch(micro_batch, world_size) + index
            items = self.curriculum.items(micro_step, micro_batch, rank, world_size)
        else:
            items = self.draws.items(epoch, index, micro_batch, rank, world_size)
        rows = []
        for item in items:
            rng = random.Random(f"{self.seed}/{epoch}/{item}")
            encoded = self.encoder.encode(self.messages(self.records[item], rng), max_length=self.max_length)
            rows.append((encoded.input_ids, encoded.labels))
        ids, labels = pad_right(rows, self.encoder.tokenizer.pad_id)
        if self.images is None:
            return ChatBatch(ids, labels)
        model: VisionLanguageModel = self.model  # type: ignore[assignment]
        if not self.train_vision:
            if self.vision_tokens is None:
                self.vision_tokens = frozen_vision_tokens(model, self.images.all_pixels)  # type: ignore[attr-defined]
            return ChatBatch(ids, labels, vision_tokens=self.vision_tokens[items])
        return ChatBatch(ids, labels, pixels=model.image_processor.normalize(self.images.pixels(items)))  # type: ignore[union-attr]


def one_crop_per_image(model: ImageModel) -> bool:
    """Whether ``model``'s processor makes every image one fixed-size crop, which the data path keeps (and a frozen
    tower's tokens can be cached for): not when it keeps the image's own size (Qwen2-VL: no fixed-size
    ``normalize``), tiles it (LLaVA-NeXT) or splits it (Idefics3 with ``do_image_splitting``)."""
    processor = model.image_processor
    return hasattr(processor, "normalize") and not getattr(processor, "splitting", False)


class ProcessedChatBatches:
    """Conversations about images their processor lays out one by one: each image is processed when its record is
    drawn and each conversation encoded for its own image (``tasks.chat.images_encoder``: Qwen2-VL's pad tokens for
    its grid, LLaVA-NeXT's tiles for its size, Idefics3's split tiles); a batch holds the images' inputs as the
    processor gives a batch of them (``tasks.image_prompts.joined_inputs``), by their Hugging Face names. The tower
    trains or not by its ``requires_grad``; nothing is cached from it, so memory stays one batch's images."""

    def __init__(
        self,
        records: list[Record],
        paths: list[str],
        model: ImageModel,
        messages: Callable[[Record, random.Random], Messages],
        seed: int,
        max_length: int,
    ) -> None:
        if model.tokenizer is None or model.image_processor is None:
            raise InputError("this model trains with its tokenizer and image processor (load it from its directory)")
        self.records, self.paths, self.model, self.messages, self.seed = records, paths, model, messages, seed
        self.max_length = min(max_length, model.config.decoder.max_positions)
        self.draws = Draws(lambda epoch: epoch_order(len(records), seed, epoch))

    def batches_per_epoch(self, micro_batch: int, world_size: int) -> int:
        return len(self.records) // (micro_batch * world_size)

    def batch(self, epoch: int, index: int, micro_batch: int, rank: int, world_size: int) -> ChatBatch:
        conversations = [
            (self.paths[item], self.messages(self.records[item], random.Random(f"{self.seed}/{epoch}/{item}")))
            for item in self.draws.items(epoch, index, micro_batch, rank, world_size)
        ]
        return processed_chat_batch(self.model, conversations, self.max_length)


def processed_chat_batch(
    model: ImageModel, conversations: Sequence[tuple[ImageSource, Messages]], max_length: int | None = None
) -> ChatBatch:
    """One batch of conversations, each about its own image, as ``ProcessedChatBatches`` trains on them (and a
    teacher-forced diagnostic scores them): each encoded for its image's layout, right-padded, the images' inputs
    joined as the processor batches them."""
    rows, images = [], []
    for image, messages in conversations:
        inputs = {name: value.cpu() for name, value in image_inputs(model, [image]).items()}
        encoded = images_encoder(model, inputs, [0]).encode(messages, max_length=max_length)
        rows.append((encoded.input_ids, encoded.labels))
        images.append(inputs)
    ids, labels = pad_right(rows, model.tokenizer.pad_id)  # type: ignore[union-attr]
    joined = joined_inputs(images)
    extra = {name: joined[name] for name in IMAGE_ARGUMENTS if name in joined}
    return ChatBatch(ids, labels, pixels=joined["pixel_values"], **extra)


def vlm_evaluation(
    eval_data: str | None, eval_images: int, task: str
) -> Callable[[nn.Module], dict[str, float]] | None:
    """Held-out scores of a VLM on a dataset folder: ``task`` ``captioning`` (CIDEr-D, BLEU-4, ...) or
    ``vqa`` (accuracy, overall and per question type)."""
    if not eval_data:
        return None
    dataset = RecordDataset(eval_data)
    records = dataset.records[:eval_images]

    def evaluate(model: nn.Module) -> dict[str, float]:
        result = generative_tasks(model, dataset, records, batch_size=32)[task]()
        if task == "captioning":
            return {k: v for k, v in result.items() if isinstance(v, float)}
        return {"vqa_accuracy": result["accuracy"], **{f"vqa_{k}": v for k, v in result["per_type"].items()}}

    return evaluate
