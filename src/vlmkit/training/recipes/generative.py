"""Generative recipes: a small language model, then LLaVA's two stages on top of it.

- ``lm``: a decoder (and its BPE tokenizer, with an ``<image>`` token reserved) trained on the
  dataset's text alone, as chat turns: captions as answers to ``CAPTION_PROMPT``, questions with
  their answers, multiple-choice questions with their letters. It learns the language and the
  format, so the VLM stages only have to learn to look.
- ``align`` (LLaVA stage 1): a new projector between a frozen vision tower (from ``train clip``, or
  the ImageNet EfficientNet of ``vlmkit:conse-effnet-minilm``) and the frozen decoder, trained on captions.
- ``instruct`` (LLaVA stage 2): the decoder unfrozen (fully, or through LoRA adapters merged on
  export) and trained on multi-turn conversations mixing questions and captions.

Images are preloaded once as uint8 (``training.data``); one training item is one image with one
conversation, sampled from (seed, epoch, item) so a resumed run sees the same data. While the vision
tower is frozen, its tokens are computed once per image and reused (``training.vision_cache``).
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.config import ConfigBase, ProjectorConfig, tiny_decoder_config
from vlmkit.config.vlm import token_grid
from vlmkit.data.records import Record, RecordDataset
from vlmkit.errors import ConfigError, InputError
from vlmkit.evaluation.circular import LETTERS, multiple_choice_prompt
from vlmkit.evaluation.generative import generative_tasks
from vlmkit.models import Decoder, DualEncoder, VisionLanguageModel
from vlmkit.models.conse import ConSEModel
from vlmkit.models.decoder import causal_lm_loss
from vlmkit.models.efficientnet import without_classifier
from vlmkit.models.vlm import VisionTower
from vlmkit.processing.chat import CAPTION_PROMPT, IMAGE_TOKEN, ChatEncoder, pad_right
from vlmkit.processing.images import ImagePreprocessor
from vlmkit.processing.text import train_bpe_tokenizer
from vlmkit.tasks.chat import chat_encoder
from vlmkit.training.data import normalize, preload_images
from vlmkit.training.lora import apply_lora, merge_lora
from vlmkit.training.trainer import TrainConfig, epoch_indices, shard
from vlmkit.training.vision_cache import frozen_vision_tokens

LORA_TARGETS = ["qkv", "out", "gate_up", "down"]


@dataclass
class GenerativeRecipe(ConfigBase):
    """One run of ``lm``, ``align`` or ``instruct``; saved as ``run.json`` beside its checkpoints."""

    stage: Literal["lm", "align", "instruct"] = "lm"
    data: str = ""
    eval_data: str | None = None
    vision_from: str | None = None  # align: a dual encoder (model dir, or a run dir holding model/) or a ConSE model
    decoder_from: str | None = None  # align: a decoder from `train lm`
    init_from: str | None = None  # instruct: the VLM from `align`
    vocab_size: int = 1024  # lm: tokenizer size
    vision_layer: int = -1  # align: the tower's output that feeds the projector (ViT block or CNN feature map)
    pixel_shuffle: int | None = None  # None: 2 where it divides the tower's token grid, else 1
    lora_rank: int = 0  # instruct: 0 trains the whole decoder, >0 LoRA adapters of this rank
    lora_alpha: float = 16.0
    train_vision: bool = False
    train_decoder: bool = False  # align: train the decoder with the projector (for decoders too small to route context)
    fresh_decoder: bool = False  # align: keep --decoder-from's tokenizer and shape, re-initialise its weights
    questions_per_turn: int = 4  # QA turns per training conversation (instruct, lm)
    caption_share: float = 1.0  # share of training conversations that also ask for a caption (instruct, lm)
    max_length: int = 384
    eval_images: int = 100
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self, where: str) -> None:
        if not self.data:
            raise ConfigError(f"{where}.data: a dataset folder is required")
        if not 0 <= self.caption_share <= 1:
            raise ConfigError(f"{where}.caption_share: expected a share in [0, 1], got {self.caption_share}")
        if self.questions_per_turn < 0:
            raise ConfigError(f"{where}.questions_per_turn: must be >= 0, got {self.questions_per_turn}")
        if self.fresh_decoder and not (self.stage == "align" and self.train_decoder):
            raise ConfigError(f"{where}.fresh_decoder: only for stage 'align' with train_decoder (it must learn)")
        needs = {"align": ("vision_from", "decoder_from"), "instruct": ("init_from",)}.get(self.stage, ())
        for name in needs:
            if not getattr(self, name):
                raise ConfigError(f"{where}.{name}: stage {self.stage!r} needs it")


def conversation(
    record: Record, rng: random.Random, questions: int, caption_share: float = 1.0
) -> list[dict[str, str]]:
    """A multi-turn chat about ``record``'s image: a random mix of its questions and, in ``caption_share``
    of the chats, a caption request."""
    turns: list[tuple[str, str]] = []
    for qa in rng.sample(record.qa or [], min(questions, len(record.qa or []))):
        if qa.choices and qa.answer in qa.choices and rng.random() < 0.5:
            choices = rng.sample(qa.choices, len(qa.choices))
            turns.append((multiple_choice_prompt(qa.question, choices), LETTERS[choices.index(qa.answer)]))
        else:
            turns.append((qa.question, qa.answer))
    if record.captions and (caption_share >= 1 or rng.random() < caption_share):
        turns.insert(rng.randrange(len(turns) + 1), (CAPTION_PROMPT, rng.choice(record.captions)))
    messages = []
    for question, answer in turns:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return messages


def _with_image(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    first = dict(messages[0], content=f"{IMAGE_TOKEN}\n{messages[0]['content']}")
    return [first, *messages[1:]]


class GenerativeTask:
    """Items are (image, conversation) pairs; the loss is next-token cross-entropy on the answers."""

    def __init__(
        self,
        model: Decoder | VisionLanguageModel,
        records: list[Record],
        pixels: torch.Tensor | None,
        encoder: ChatEncoder,
        recipe: GenerativeRecipe,
        evaluation: tuple[RecordDataset, list[Record]] | None,
    ) -> None:
        self.model, self.records, self.pixels, self.encoder = model, records, pixels, encoder
        self.recipe, self.evaluation = recipe, evaluation
        self._order: tuple[int, torch.Tensor] | None = None
        self.vision_tokens: torch.Tensor | None = None  # a frozen tower's output per image, built on first use

    def batches_per_epoch(self, micro_batch: int, world_size: int) -> int:
        return len(self.records) // (micro_batch * world_size)

    def _messages(self, record: Record, rng: random.Random) -> list[dict[str, str]]:
        stage = self.recipe.stage
        if stage == "align":
            return _with_image(
                [
                    {"role": "user", "content": CAPTION_PROMPT},
                    {"role": "assistant", "content": rng.choice(record.captions or [""])},
                ]
            )
        messages = conversation(record, rng, self.recipe.questions_per_turn, self.recipe.caption_share)
        return messages if stage == "lm" else _with_image(messages)

    def batch(self, epoch: int, index: int, micro_batch: int, rank: int, world_size: int) -> Any:
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, epoch_indices(len(self.records), self.recipe.train.seed, epoch))
        items = shard(self._order[1], index, micro_batch, rank, world_size)
        rows = []
        for item in items:
            rng = random.Random(f"{self.recipe.train.seed}/{epoch}/{item}")
            encoded = self.encoder.encode(self._messages(self.records[item], rng), max_length=self.recipe.max_length)
            rows.append((encoded.input_ids, encoded.labels))
        ids, labels = pad_right(rows, self.encoder.tokenizer.pad_id)
        if self.pixels is None:
            return ids, labels, None, None
        model: VisionLanguageModel = self.model  # type: ignore[assignment]
        if not self.recipe.train_vision:
            if self.vision_tokens is None:
                self.vision_tokens = frozen_vision_tokens(model, self.pixels)
            return ids, labels, None, self.vision_tokens[items]
        return ids, labels, normalize(self.pixels[items], model.image_processor), None  # type: ignore[arg-type]

    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        ids, labels, pixels, vision_tokens = batch
        if pixels is None and vision_tokens is None:
            return causal_lm_loss(model(ids), labels), {}
        return model(ids, pixels, labels=labels, vision_tokens=vision_tokens).loss, {}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        if self.evaluation is None or self.recipe.stage == "lm":
            return {}
        dataset, records = self.evaluation
        tasks = generative_tasks(model, dataset, records, batch_size=32)
        if self.recipe.stage == "align":
            result = tasks["captioning"]()
            return {k: v for k, v in result.items() if isinstance(v, float)}
        result = tasks["vqa"]()
        return {"vqa_accuracy": result["accuracy"], **{f"vqa_{k}": v for k, v in result["per_type"].items()}}


def _vision_tower(source: str) -> tuple[VisionTower, ImagePreprocessor]:
    """The image tower of a dual encoder, or the ImageNet CNN of a ConSE model, with its preprocessing."""
    path = Path(source)
    model = from_pretrained(path / "model" if (path / "model" / "config.json").exists() else path)
    if isinstance(model, DualEncoder):
        return model.vision, model.image_processor  # type: ignore[return-value]
    if isinstance(model, ConSEModel):
        # Squash rather than ConSE's resize-and-crop: a crop would cut off objects at the image's edges.
        side = model.config.vision.image_size
        processor = dataclasses.replace(
            model.image_processor, size=(side, side), resize_mode="squash", shortest_edge=None
        )
        return without_classifier(model.vision), processor  # type: ignore[arg-type]
    raise InputError(
        f"{source}: --vision-from needs a dual encoder (e.g. a `vlmkit train clip` run) or a ConSE model "
        "(vlmkit:conse-effnet-minilm, for its ImageNet CNN)"
    )


def _token_grid(tower: VisionTower, vision_layer: int) -> int:
    """The token grid ``vision_layer`` selects; a CNN level outside the network is refused naming the field."""
    try:
        return token_grid(tower.config, vision_layer)
    except ConfigError as error:
        raise ConfigError(f"GenerativeRecipe.vision_layer: {error}") from None


def build(recipe: GenerativeRecipe, records: list[Record]) -> Decoder | VisionLanguageModel:
    torch.manual_seed(recipe.train.seed)
    if recipe.stage == "lm":
        rng = random.Random(0)
        texts = [m["content"] for r in records[:20_000] for m in conversation(r, rng, 100)]
        texts += ["User:", "Assistant:", CAPTION_PROMPT, IMAGE_TOKEN]
        tokenizer = train_bpe_tokenizer(texts, recipe.vocab_size, special_tokens=[IMAGE_TOKEN], max_length=1024)
        decoder = Decoder(
            tiny_decoder_config(
                tokenizer.vocab_size,
                tokenizer.bos_id,
                tokenizer.eos_id,  # type: ignore[arg-type]
                tokenizer.pad_id,
            )
        )
        decoder.tokenizer = tokenizer
        return decoder
    if recipe.stage == "align":
        tower, processor = _vision_tower(recipe.vision_from)  # type: ignore[arg-type]
        decoder = from_pretrained(recipe.decoder_from)  # type: ignore[arg-type]
        if not isinstance(decoder, Decoder) or decoder.tokenizer is None:
            raise InputError(f"{recipe.decoder_from}: --decoder-from needs a decoder with a tokenizer (`train lm`)")
        if recipe.fresh_decoder:
            # A tiny decoder pretrained on the captions' text learns to read image tokens several times slower
            # than a random one (README, "reading the image"); its tokenizer and shape are what is kept.
            decoder.reset_parameters()
        shuffle = recipe.pixel_shuffle or (2 if _token_grid(tower, recipe.vision_layer) % 2 == 0 else 1)
        # The tower's post-norm brings its residual stream (std ~20 in a small CLIP) to unit scale; without it
        # the projected image tokens dwarf the text embeddings and the decoder learns to ignore them.
        projector = ProjectorConfig(
            kind="mlp", vision_layer=recipe.vision_layer, vision_norm=True, pixel_shuffle=shuffle
        )
        model = VisionLanguageModel.from_parts(tower, decoder, projector, image_processor=processor)
        model.vision.requires_grad_(recipe.train_vision)
        model.decoder.requires_grad_(recipe.train_decoder)
        return model.train()
    model = from_pretrained(recipe.init_from)  # type: ignore[arg-type]
    if not isinstance(model, VisionLanguageModel):
        raise InputError(f"{recipe.init_from}: --from needs a VLM (e.g. the output of `train vlm --stage align`)")
    model.vision.requires_grad_(recipe.train_vision)
    if recipe.lora_rank:
        model.decoder.requires_grad_(False)
        apply_lora(model.decoder, LORA_TARGETS, rank=recipe.lora_rank, alpha=recipe.lora_alpha)
    return model.train()


def prepare(recipe: GenerativeRecipe) -> tuple[nn.Module, GenerativeTask]:
    dataset = RecordDataset(recipe.data)
    records = [r for r in dataset.records if r.captions or r.qa]
    if not records:
        raise InputError(f"{recipe.data}: no records with captions or questions")
    model = build(recipe, records)
    encoder = chat_encoder(model)
    pixels = None
    if isinstance(model, VisionLanguageModel):
        pixels = preload_images([dataset.image_path(r) for r in records], model.image_processor)  # type: ignore[arg-type]
    evaluation = None
    eval_folder = recipe.eval_data
    if eval_folder and recipe.stage != "lm":
        eval_set = RecordDataset(eval_folder)
        evaluation = (eval_set, eval_set.records[: recipe.eval_images])
    return model, GenerativeTask(model, records, pixels, encoder, recipe, evaluation)


def export(model: nn.Module, run_dir: Path) -> Path:
    """The trained model as a loadable directory; LoRA adapters are merged into the weights first."""
    if isinstance(model, VisionLanguageModel):
        merge_lora(model.decoder)
    return save_pretrained(model, run_dir / "model")
