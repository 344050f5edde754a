"""``mlm``: BERT-style masked language modelling of a dual encoder's text tower, before contrastive training.

Each training caption has 15% of its real tokens (``mask_prob``; never padding, BOS or EOS) chosen as
targets; a chosen token is replaced by the mask token 80% of the time, by a random token 10%, and kept
10%, and the tower must name the original at every chosen position (Devlin et al. 2019, BERT, section
3.1). A caption whose draw chose nothing gets one target, so every row teaches. The draws follow (seed,
epoch, index), so resume is exact.

What the text tower supports: ``models.text`` runs causal (CLIP: each token sees only those before it,
pooled at EOS) or bidirectional (SigLIP, BERT). Masked-token prediction needs the right context too, so
``bidirectional`` (the default) switches a causal tower to bidirectional attention for this run and for
good: the exported model keeps it, and ``train clip --from`` trains it so. A bidirectional tower pooled
at EOS reads its padding (it has no attention mask, as SigLIP's), so its tokenizer then pads every text
to the context length, the same in training and in inference. ``--no-bidirectional`` keeps a causal
tower causal, where a masked token is predicted from its left context only.

The model is the one ``train clip`` builds from scratch (same preset, image size, conv stem and
tokenizer, plus a mask token), or a loaded dual encoder (``--from``); the mask token is added to its
tokenizer and embedding when it has none. The MLM head (BERT's: dense, GELU, LayerNorm, then the
transposed token embedding plus a bias, so the output is tied to the input embedding) is a training-only
module of the objective: checkpointed for resume, dropped on export, so the exported directory is an
ordinary dual encoder that ``train clip --from`` starts from. The image tower is carried untouched.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from vlmkit.checkpoints import from_pretrained
from vlmkit.config.base import option
from vlmkit.data.sampling import Draws
from vlmkit.data.sources import open_images
from vlmkit.errors import ConfigError, InputError
from vlmkit.models import DualEncoder
from vlmkit.processing.chat import IGNORE_INDEX
from vlmkit.processing.text import TextTokenizer
from vlmkit.training.batches import Batch
from vlmkit.training.objective import Objective, ObjectiveOutput, Prepared
from vlmkit.training.recipes.base import Recipe
from vlmkit.training.recipes.clip import ClipRecipe, default_eval_folder

MASK_TOKENS = ("<mask>", "[MASK]")
"""Mask tokens a tokenizer may already have (BPE style, WordPiece style); else ``<mask>`` is added."""


@dataclass
class MaskedTextBatch(Batch):
    """Captions with some tokens masked, and the originals to predict there (-100 elsewhere)."""

    input_ids: torch.Tensor  # (B, T)
    labels: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor | None = None


def mask_tokens(
    input_ids: torch.Tensor,
    eligible: torch.Tensor,
    mask_id: int,
    vocab_size: int,
    generator: torch.Generator,
    mask_prob: float = 0.15,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's corruption of ``input_ids`` (B, T) where ``eligible``: returns (corrupted ids, labels)."""
    chosen = (torch.rand(input_ids.shape, generator=generator) < mask_prob) & eligible
    # A row with eligible tokens but none chosen gets one, drawn uniformly among them.
    empty = ~chosen.any(1) & eligible.any(1)
    if empty.any():
        pick = torch.multinomial(eligible[empty].float(), 1, generator=generator).squeeze(1)
        chosen[empty.nonzero().squeeze(1), pick] = True
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    draw = torch.rand(input_ids.shape, generator=generator)
    corrupted = input_ids.clone()
    corrupted[chosen & (draw < 0.8)] = mask_id
    random_rows = chosen & (draw >= 0.8) & (draw < 0.9)
    corrupted[random_rows] = torch.randint(vocab_size, (int(random_rows.sum()),), generator=generator)
    return corrupted, labels


class MaskedCaptions:
    """A random caption per record per epoch, tokenised and masked; everything drawn from (seed, epoch, index)."""

    def __init__(
        self,
        captions: list[list[str]],
        order: Draws,
        tokenizer: TextTokenizer,
        mask_id: int,
        seed: int,
        mask_prob: float,
        use_mask: bool,
    ) -> None:
        self.captions, self.draws, self.tokenizer, self.mask_id = captions, order, tokenizer, mask_id
        self.seed, self.mask_prob, self.use_mask = seed, mask_prob, use_mask
        self.specials = [i for i in (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id, mask_id) if i is not None]

    def batches_per_epoch(self, micro_batch: int, world_size: int) -> int:
        return len(self.captions) // (micro_batch * world_size)

    def encode(self, texts: Sequence[str], generator: torch.Generator) -> MaskedTextBatch:
        tokens = self.tokenizer(list(texts))
        eligible = tokens.attention_mask.bool() & ~torch.isin(tokens.input_ids, torch.tensor(self.specials))
        ids, labels = mask_tokens(
            tokens.input_ids, eligible, self.mask_id, self.tokenizer.vocab_size, generator, self.mask_prob
        )
        return MaskedTextBatch(ids, labels, tokens.attention_mask if self.use_mask else None)

    def batch(self, epoch: int, index: int, micro_batch: int, rank: int, world_size: int) -> MaskedTextBatch:
        items = self.draws.items(epoch, index, micro_batch, rank, world_size)
        texts = [random.Random(f"{self.seed}/{epoch}/{i}").choice(self.captions[i]) for i in items]
        generator = torch.Generator().manual_seed(random.Random(f"{self.seed}/{epoch}/{index}/{rank}").getrandbits(62))
        return self.encode(texts, generator)


class MlmHead(nn.Module):
    """BERT's prediction head: dense, GELU, LayerNorm, then the token embedding transposed plus a bias."""

    def __init__(self, width: int, vocab_size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, states: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        return self.norm(F.gelu(self.dense(states))) @ embedding.T + self.bias


class MlmObjective(Objective):
    """Cross-entropy of the masked positions; the token states are read off the tower's final norm."""

    def __init__(self, width: int, vocab_size: int) -> None:
        super().__init__()
        self.head = MlmHead(width, vocab_size)

    def forward(self, model: nn.Module, batch: MaskedTextBatch) -> ObjectiveOutput:
        states: list[torch.Tensor] = []
        # The tower returns its pooled vector; the per-token states are its final norm's output.
        hook = model.text.final_norm.register_forward_hook(lambda _m, _i, output: states.append(output))
        try:
            model.text(batch.input_ids, batch.attention_mask)
        finally:
            hook.remove()
        keep = batch.labels != IGNORE_INDEX
        logits = self.head(states[0][keep], model.text.token_embedding.weight).float()
        loss = F.cross_entropy(logits, batch.labels[keep])
        accuracy = (logits.argmax(-1) == batch.labels[keep]).float().mean()
        return ObjectiveOutput(loss, {"mlm_accuracy": accuracy.item()})


def add_mask_token(model: DualEncoder) -> int:
    """The id of the model tokenizer's mask token, which is added (with an embedding row) if missing."""
    tokenizer: TextTokenizer = model.tokenizer  # type: ignore[assignment]
    for token in MASK_TOKENS:
        found = tokenizer.tokenizer.token_to_id(token)
        if found is not None:
            return found
    tokenizer.tokenizer.add_special_tokens([MASK_TOKENS[0]])
    mask_id = tokenizer.tokenizer.token_to_id(MASK_TOKENS[0])
    embedding = model.text.token_embedding
    if mask_id != embedding.num_embeddings:
        raise InputError(
            f"the tokenizer's new {MASK_TOKENS[0]} got id {mask_id}, not the next row {embedding.num_embeddings}"
        )
    grown = nn.Embedding(mask_id + 1, embedding.embedding_dim, device=embedding.weight.device)
    grown.weight.data[:mask_id] = embedding.weight.data
    nn.init.normal_(grown.weight.data[mask_id:], std=0.02)
    model.text.token_embedding = grown
    model.config.text.vocab_size = mask_id + 1
    return mask_id


def make_bidirectional(model: DualEncoder) -> None:
    """A causal text tower turned bidirectional; one that pools without a mask then pads to full length."""
    model.config.text.causal = False
    tokenizer: TextTokenizer = model.tokenizer  # type: ignore[assignment]
    if not model.config.text.uses_attention_mask and not tokenizer.pad_to_max_length:
        settings = {**tokenizer.to_dict(), "pad_to_max_length": True}
        model.tokenizer = TextTokenizer.from_dict(settings, tokenizer.tokenizer)


@dataclass
class MlmRecipe(Recipe):
    """Masked language modelling of a dual encoder's text tower."""

    name: ClassVar[str] = "mlm"
    summary: ClassVar[str] = "BERT-style masked language modelling of a dual encoder's text tower"

    preset: Literal["tiny", "small", "base"] = option("tiny", "tower shapes, from scratch (as train clip)")
    image_size: int = option(64, "image side in pixels, from scratch (the image tower is carried untrained)")
    init_from: str | None = option(None, "a dual encoder whose text tower to train", flag="--from")
    bidirectional: bool = option(True, "make the text tower bidirectional (kept on export)")
    mask_prob: float = option(0.15, "share of each caption's tokens that are prediction targets", research=True)
    eval_images: int = option(500, "held-out captions (one per record) scored at each evaluation")
    conv_stem: int = option(
        0, "as train clip's, from scratch: so `train clip --from` gets that image tower", research=True
    )
    conv_stem_norm: Literal["none", "batch"] = option("none", "as train clip's, from scratch", research=True)
    vocab_size: int = option(512, "size of the tokenizer trained on the captions (from scratch)", research=True)

    def validate(self, where: str) -> None:
        super().validate(where)
        if not 0 < self.mask_prob < 1:
            raise ConfigError(f"{where}.mask_prob: expected a share in (0, 1), got {self.mask_prob}")

    def _builder(self) -> ClipRecipe:
        """The ``train clip`` recipe that builds the same model from scratch."""
        fields = ("data", "preset", "image_size", "conv_stem", "conv_stem_norm", "vocab_size")
        return ClipRecipe(**{name: getattr(self, name) for name in fields})  # type: ignore[arg-type]

    def _model(self, captions: list[str]) -> DualEncoder:
        if not self.init_from:
            builder = self._builder()
            return builder.new_model(captions[:50_000], builder.image_processor())
        model = from_pretrained(self.init_from)
        if not isinstance(model, DualEncoder) or model.tokenizer is None or model.image_processor is None:
            raise InputError(f"{self.init_from}: --from needs a dual encoder with a tokenizer and image processor")
        return model.train()

    def prepare(self) -> Prepared:
        torch.manual_seed(self.train.seed)
        has_captions = lambda record: bool(record.captions)  # noqa: E731
        images = open_images(self.data, self._builder().image_processor(), has_captions, mode="stream")
        captions = [list(r.captions or []) for r in images.records]
        model = self._model([c for cs in captions for c in cs])
        if self.bidirectional:
            make_bidirectional(model)
        mask_id = add_mask_token(model)
        tokenizer: TextTokenizer = model.tokenizer  # type: ignore[assignment]
        use_mask = model.config.text.uses_attention_mask
        source = MaskedCaptions(
            captions, Draws(lambda epoch: images.order(self.train.seed, epoch)), tokenizer, mask_id,
            self.train.seed, self.mask_prob, use_mask,
        )  # fmt: skip
        objective = MlmObjective(model.config.text.width, tokenizer.vocab_size)
        return Prepared(model, objective, source, self._evaluation(source, objective))

    def _evaluation(self, source: MaskedCaptions, objective: MlmObjective):
        """Masked-token accuracy and loss on held-out captions, masked once with a fixed seed."""
        folder = self.eval_data or default_eval_folder(self.data)
        if not folder:
            return None
        records = open_images(folder, self._builder().image_processor(), lambda r: bool(r.captions), mode="stream")
        texts = [r.captions[0] for r in records.records[: self.eval_images]]  # type: ignore[index]
        held_out = source.encode(texts, torch.Generator().manual_seed(self.train.seed))

        def evaluate(model: nn.Module) -> dict[str, float]:
            batch = held_out.to(model.device)  # type: ignore[arg-type]
            result = objective(model, batch)
            return {"mlm_loss": result.loss.item(), "mlm_accuracy": result.metrics["mlm_accuracy"]}

        return evaluate
