"""Text-to-image training: a DiT in pixel space by flow matching, on any captioned dataset.

The text tower is either trained with the DiT from scratch (a byte-level BPE tokenizer fitted to the
training captions, a small CLIP-style causal tower) or taken from a vlmkit dual encoder (``text_from``:
its text tower and tokenizer, frozen unless ``train_text``). Each epoch gives each image one of its
captions at random. Images are squashed to ``image_size`` and mapped to [-1, 1].

Each evaluation (every ``train.eval_every`` steps, and at the end) measures the flow loss on held-out
images with fixed noise and times (comparable across steps), and, with ``samples_dir``, writes a sheet
of the EMA model's samples for ``sample_prompts`` (fixed seeds) as ``step_NNNNNN.png``. The exported
model is the EMA.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import torch
from torch import nn

from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.config import TextConfig
from vlmkit.config.base import option
from vlmkit.config.dit import DiTConfig
from vlmkit.data.records import Record
from vlmkit.data.sampling import Draws
from vlmkit.data.sources import ImageRecords, open_images
from vlmkit.errors import ConfigError, InputError
from vlmkit.models import DualEncoder
from vlmkit.models.dit import DiT
from vlmkit.processing.images import ImagePreprocessor
from vlmkit.processing.text import TextTokenizer, train_bpe_tokenizer
from vlmkit.tasks.imagine import ImagineSettings, generate_images
from vlmkit.training.flow_objective import FlowObjective, ImagePromptBatch, flow_loss
from vlmkit.training.objective import Prepared
from vlmkit.training.recipes.base import Recipe
from vlmkit.training.recipes.clip import default_eval_folder
from vlmkit.visualize import Row, Tile, result_sheet, save_png

# DiT shapes by preset (the text tower, from scratch, takes the DiT's width).
PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(width=128, layers=4, heads=4, mlp_dim=512, text_layers=2),
    "small": dict(width=256, layers=8, heads=8, mlp_dim=1024, text_layers=4),
    "base": dict(width=384, layers=12, heads=6, mlp_dim=1536, text_layers=6),
}
SAMPLE_PROMPTS = [
    "a red star above a blue circle",
    "a large yellow square",
    "a green circle and a white triangle",
    "two shapes: a heart and a diamond",
]
"""The fixed prompts of the sample sheets (ShapesWorld vocabulary; any text works)."""


def _has_captions(record: Record) -> bool:
    return bool(record.captions)


def pixel_processor(size: int) -> ImagePreprocessor:
    """Squash to ``size`` and map uint8 to [-1, 1], the DiT's pixel range."""
    return ImagePreprocessor(size=(size, size), resize_mode="squash", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


@dataclass
class T2IRecipe(Recipe):
    """Text-to-image flow matching: a DiT conditioned on a text tower's tokens, with classifier-free guidance."""

    name: ClassVar[str] = "t2i"
    summary: ClassVar[str] = "text-to-image DiT by flow matching"

    preset: Literal["tiny", "small", "base"] = option("tiny", "DiT shape")
    image_size: int = option(32, "side of the generated images in pixels (the data is resized to it)")
    patch_size: int = option(4, "patch side in pixels")
    prediction: Literal["velocity", "x0"] = option(
        "velocity",
        "what the DiT's last layer predicts; x0 when a patch has more values than the width (64 px, patch 8)",
    )
    init_from: str | None = option(
        None, "a t2i model directory to continue training (its shape and tokenizer)", flag="--from"
    )
    text_from: str | None = option(None, "dual encoder whose text tower and tokenizer to use (default: train one)")
    train_text: bool = option(False, "train the text tower taken from --text-from (from scratch it always trains)")
    cond_dropout: float = option(0.1, "share of items trained without their text (classifier-free guidance)")
    ema_decay: float = option(0.999, "decay of the weights' moving average (0: no EMA)", research=True)
    time_mean: float = option(0.0, "mean of the logit-normal training times", research=True)
    time_std: float = option(1.0, "spread of the logit-normal training times", research=True)
    vocab_size: int = option(512, "size of the tokenizer trained on the captions (from scratch)", research=True)
    eval_images: int = option(256, "held-out images whose flow loss each evaluation measures")
    samples_dir: str | None = option(None, "write a sheet of samples here at each evaluation (e.g. RUN/samples)")
    sample_steps: int = option(20, "sampler steps of the sample sheets")
    sample_guidance: float = option(3.0, "guidance scale of the sample sheets")
    sample_prompts: list[str] = option(factory=lambda: list(SAMPLE_PROMPTS), help="prompts of the sheets", cli=False)

    def validate(self, where: str) -> None:
        super().validate(where)
        if not 0 <= self.cond_dropout < 1:
            raise ConfigError(f"{where}.cond_dropout: expected a share in [0, 1), got {self.cond_dropout}")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"{where}.ema_decay: expected 0 <= decay < 1, got {self.ema_decay}")
        if self.image_size < 1 or self.patch_size < 1 or self.image_size % self.patch_size:
            raise ConfigError(f"{where}: image_size {self.image_size} must be a positive multiple of patch_size")
        if self.time_std <= 0 or self.eval_images < 1:
            raise ConfigError(f"{where}: time_std and eval_images must be positive")
        if self.init_from and self.text_from:
            raise ConfigError(f"{where}: --from already brings its text tower; drop --text-from")
        if self.train_text and not self.text_from:
            raise ConfigError(f"{where}.train_text: only with --text-from (a tower trained from scratch always trains)")
        ImagineSettings(steps=self.sample_steps, guidance=self.sample_guidance).check()

    def prepare(self) -> Prepared:
        torch.manual_seed(self.train.seed)
        processor = pixel_processor(self.image_size)
        images = open_images(self.data, processor, _has_captions, mode=self.data_mode, buffer=self.shuffle_buffer)  # type: ignore[arg-type]
        captions = [c for r in images.records for c in r.captions or []]
        model = self._pretrained() if self.init_from else self._new_model(captions[:50_000])
        batches = PromptBatches(images, model.tokenizer, self.train.seed)  # type: ignore[arg-type]
        objective = FlowObjective(
            model, self.cond_dropout, self.time_mean, self.time_std, self.ema_decay, self.train.grad_accum
        )
        self._objective = objective
        eval_folder = self.eval_data or default_eval_folder(self.data)
        held_out = held_out_batch(eval_folder, processor, model.tokenizer, self.eval_images) if eval_folder else None  # type: ignore[arg-type]

        def evaluate(trained: nn.Module) -> dict[str, float]:
            objective.catch_up(trained)
            averaged = objective.averaged(trained)  # type: ignore[arg-type]
            if self.samples_dir:
                self.write_samples(averaged, Path(self.samples_dir) / f"step_{objective.step:06d}.png")
            if held_out is None:
                return {}
            batch = held_out.to(averaged.device)
            return {"flow_loss": flow_loss(averaged, batch, generator=torch.Generator().manual_seed(0)).loss.item()}

        return Prepared(model, objective, batches, evaluate)

    def write_samples(self, model: DiT, path: Path) -> None:
        """One row per fixed prompt, four seeds each."""
        settings = ImagineSettings(steps=self.sample_steps, guidance=self.sample_guidance, seed=0)
        images = generate_images(model, self.sample_prompts, 4, settings)
        rows = [
            Row(prompt, [Tile(_pil(images[4 * i + k])) for k in range(4)])
            for i, prompt in enumerate(self.sample_prompts)
        ]
        path.parent.mkdir(parents=True, exist_ok=True)
        save_png(result_sheet(rows, tile=96, caption_lines=0), path)

    def export(self, model: nn.Module, run_dir: Path) -> Path:
        objective: FlowObjective = self._objective
        objective.catch_up(model)
        return save_pretrained(objective.averaged(model), run_dir / "model")  # type: ignore[arg-type]

    def _new_model(self, captions: list[str]) -> DiT:
        p = PRESETS[self.preset]
        if self.text_from:
            text_config, tokenizer, tower = self._pretrained_text()
        else:
            tokenizer = train_bpe_tokenizer(captions, self.vocab_size, max_length=64)
            longest = int(tokenizer(captions[:2000]).attention_mask.sum(1).max()) if captions else 16
            tokenizer = TextTokenizer.from_dict(
                {**tokenizer.to_dict(), "max_length": min(64, longest + 8)}, tokenizer.tokenizer
            )
            text_config = TextConfig(
                vocab_size=tokenizer.vocab_size,
                context_length=tokenizer.max_length,
                width=p["width"],
                layers=p["text_layers"],
                heads=p["heads"],
                mlp_dim=p["mlp_dim"],
                act="gelu",
                eos_token_id=tokenizer.eos_id,  # type: ignore[arg-type]
                pad_token_id=tokenizer.pad_id,
            )
            tower = None
        config = DiTConfig(
            image_size=self.image_size,
            patch_size=self.patch_size,
            width=p["width"],
            layers=p["layers"],
            heads=p["heads"],
            mlp_dim=p["mlp_dim"],
            text=text_config,
            prediction=self.prediction,
        ).checked("t2i")
        model = DiT(config)
        if tower is not None:
            model.text.load_state_dict(tower.state_dict())
            model.text.requires_grad_(self.train_text)
        model.tokenizer = tokenizer
        return model

    def _pretrained(self) -> DiT:
        model = from_pretrained(self.init_from)  # type: ignore[arg-type]
        if not isinstance(model, DiT) or model.tokenizer is None:
            raise InputError(f"{self.init_from}: --from needs a text-to-image model directory (a t2i run's model/)")
        if model.config.image_size != self.image_size:
            raise ConfigError(
                f"--image-size {self.image_size}: {self.init_from} generates {model.config.image_size} px"
            )
        if model.config.prediction != self.prediction:
            raise ConfigError(f"--prediction {self.prediction}: {self.init_from} predicts {model.config.prediction}")
        return model.train()

    def _pretrained_text(self) -> tuple[TextConfig, TextTokenizer, nn.Module]:
        encoder = from_pretrained(self.text_from)  # type: ignore[arg-type]
        if not isinstance(encoder, DualEncoder) or encoder.tokenizer is None:
            raise InputError(f"{self.text_from}: --text-from needs a dual encoder (CLIP or SigLIP) with a tokenizer")
        return encoder.config.text, encoder.tokenizer, encoder.text


def _pil(pixels: torch.Tensor):
    from PIL import Image

    return Image.fromarray(pixels.permute(1, 2, 0).numpy())


class PromptBatches:
    """Each image with one of its captions, drawn per (seed, epoch, item)."""

    def __init__(self, images: ImageRecords, tokenizer: TextTokenizer, seed: int) -> None:
        self.images, self.tokenizer, self.seed = images, tokenizer, seed
        self.captions = [list(r.captions or []) for r in images.records]
        self.processor = pixel_processor(1)  # the value half only: normalisation does not depend on size
        self.draws = Draws(lambda epoch: images.order(seed, epoch))

    def batches_per_epoch(self, micro_batch: int, world_size: int) -> int:
        return len(self.captions) // (micro_batch * world_size)

    def batch(self, epoch: int, index: int, micro_batch: int, rank: int, world_size: int) -> ImagePromptBatch:
        items = self.draws.items(epoch, index, micro_batch, rank, world_size)
        texts = [random.Random(f"{self.seed}/{epoch}/{i}").choice(self.captions[i]) for i in items]
        tokens = self.tokenizer(texts)
        pixels = self.processor.normalize(self.images.pixels(items))
        return ImagePromptBatch(pixels, tokens.input_ids, tokens.attention_mask)


def held_out_batch(spec: str, processor: ImagePreprocessor, tokenizer: TextTokenizer, limit: int) -> ImagePromptBatch:
    """The first ``limit`` held-out images, each with its first (canonical) caption."""
    images = open_images(spec, processor, _has_captions, mode="memory", limit=limit)
    tokens = tokenizer([(r.captions or [""])[0] for r in images.records])
    pixels = processor.normalize(images.pixels(range(len(images.records))))
    return ImagePromptBatch(pixels, tokens.input_ids, tokens.attention_mask)
