"""Autoregressive generation for ``Decoder`` (and, through it, ``VisionLanguageModel``).

The loop is kept lean because on a CPU a small model's decoding step is dominated by per-step
overhead, not arithmetic: the cache is static (``vlmkit.nn.kv_cache``), a step passes one token per
row and no mask or positions (the cache knows them), logits are computed for the last position
only, and greedy decoding is one ``argmax``. Sampling options (temperature, top-k, top-p,
repetition penalty) cost only when switched on. Text-level concerns (stop strings, streaming
without splitting a multi-byte character) live in ``TextStream``, which needs a tokenizer; the
token loop does not.

On the CPU a float32 decoder's matrices are re-laid for the batch when a generation starts
(``vlmkit.nn.gemv_layout``: same values and shapes; ~1.5x faster reads at batch 1).

A token is fed to the model only when the next one is wanted, so generation that stops (EOS, stop
string, length) never pays for a forward pass whose logits nobody reads. The cache then holds the
prompt and every generated token but the last.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from vlmkit.errors import InputError
from vlmkit.nn.gemv_layout import TRANSPOSED_UP_TO, lay_out_
from vlmkit.nn.kv_cache import KVCache

if TYPE_CHECKING:
    from vlmkit.models.decoder import Decoder
    from vlmkit.processing.text import TextTokenizer


@dataclass
class GenerationConfig:
    """How to pick tokens and when to stop.

    Fields:
        max_new_tokens: most tokens generated per row (EOS included).
        temperature: 0 is greedy (argmax); above 0 samples from ``softmax(logits / temperature)``.
        top_k: sample among the ``top_k`` most likely tokens only (0: all).
        top_p: sample among the smallest set of tokens whose probability reaches ``top_p`` (1: all).
        repetition_penalty: above 1 discourages tokens already in the prompt or the output: their
            logit is divided by it when positive, multiplied when negative (CTRL's rule).
        seed: seed of the sampling generator, for reproducible samples; None uses torch's global RNG.
        stop: strings that end generation; the text is cut before them (needs a tokenizer).
        eos_token_ids: ids that end generation; None takes the decoder config's and the tokenizer's.
    """

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    eos_token_ids: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        checks = [
            ("max_new_tokens", self.max_new_tokens >= 1, "an integer >= 1"),
            ("temperature", self.temperature >= 0, "a number >= 0"),
            ("top_k", self.top_k >= 0, "an integer >= 0"),
            ("top_p", 0 < self.top_p <= 1, "a number in (0, 1]"),
            ("repetition_penalty", self.repetition_penalty > 0, "a number > 0"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise InputError(f"generation {name}: expected {expected}, got {getattr(self, name)!r}")
        if any(not s for s in self.stop):
            raise InputError("generation stop: stop strings must not be empty")
        self.stop = tuple(self.stop)


def pad_left(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists as a left-padded (B, L) id tensor and its mask, so every row ends at the same column."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise InputError("generation needs at least one prompt, and no prompt may be empty")
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.as_tensor(list(prompt), dtype=torch.long)
        mask[row, width - len(prompt) :] = 1
    return ids, mask


class _Sampler:
    """Logits of the last position -> next token per row, under a ``GenerationConfig``."""

    def __init__(self, config: GenerationConfig, input_ids: torch.Tensor, mask: torch.Tensor | None, vocab: int):
        self.config = config
        self.generator = None
        if config.seed is not None:
            self.generator = torch.Generator(device=input_ids.device).manual_seed(config.seed)
        self.seen = None
        if config.repetition_penalty != 1.0:
            self.seen = torch.zeros(input_ids.shape[0], vocab, dtype=torch.bool, device=input_ids.device)
            for row in range(input_ids.shape[0]):
                self.seen[row, input_ids[row] if mask is None else input_ids[row][mask[row].bool()]] = True

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        config = self.config
        if self.seen is not None:
            penalty = config.repetition_penalty
            logits = torch.where(self.seen, torch.where(logits > 0, logits / penalty, logits * penalty), logits)
        greedy = config.temperature == 0
        token = logits.argmax(dim=-1) if greedy else self._sample(logits.float() / config.temperature)
        if self.seen is not None:
            self.seen.scatter_(1, token[:, None], True)
        return token

    def _sample(self, logits: torch.Tensor) -> torch.Tensor:
        config = self.config
        if 0 < config.top_k < logits.shape[-1]:
            kth = logits.topk(config.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if config.top_p < 1:
            ordered, order = logits.sort(dim=-1, descending=True)
            before = ordered.softmax(dim=-1).cumsum(dim=-1) - ordered.softmax(dim=-1)
            drop = before >= config.top_p  # tokens whose predecessors already reach top_p
            logits = logits.scatter(1, order, ordered.masked_fill(drop, float("-inf")))
        return torch.multinomial(logits.softmax(dim=-1), 1, generator=self.generator)[:, 0]


class Decoding:
    """One generation in progress: the prompt is prefilled on creation, ``step`` yields tokens.

    ``segments`` are a prefix-LM's attention blocks over the prompt (see ``Decoder.hidden_states``);
    without them a prefill is one block.

    Rows that ``finish`` keep being fed the pad id (their output is complete, the batch goes on).
    The cache ends up holding the prompt and every generated token but the last. A decoder in eval
    mode has its matrices laid out for this batch size (``decoding_layout``).
    """

    def __init__(
        self,
        decoder: Decoder,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        config: GenerationConfig | None = None,
        *,
        inputs_embeds: torch.Tensor | None = None,
        cache: KVCache | None = None,
        segments: torch.Tensor | None = None,
    ) -> None:
        self.decoder = decoder
        self.config = config or GenerationConfig()
        batch, length = input_ids.shape
        if not decoder.training:
            decoding_layout(decoder, batch)
        self.cache = cache if cache is not None else decoder.new_cache(batch, length + self.config.max_new_tokens)
        room = decoder.config.max_positions - self.cache.length - length + 1
        if room < 1:
            raise InputError(
                f"prompt of {self.cache.length + length} tokens leaves no room under the decoder's max_positions "
                f"{decoder.config.max_positions}"
            )
        self.limit = min(self.config.max_new_tokens, room)
        self.sampler = _Sampler(self.config, input_ids, attention_mask, decoder.config.vocab_size)
        self.finished = [False] * batch
        self._finished = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
        self._pad = torch.tensor(decoder.config.pad_token_id, device=input_ids.device)
        self.steps = 0
        self._pending: torch.Tensor | None = None
        with torch.inference_mode():
            prompt = {"input_ids": input_ids} if inputs_embeds is None else {"inputs_embeds": inputs_embeds}
            self._logits = decoder(
                **prompt, attention_mask=attention_mask, cache=self.cache, segments=segments, last_only=True
            )[:, -1]

    @property
    def done(self) -> bool:
        return self.steps >= self.limit or all(self.finished)

    def step(self) -> torch.Tensor:
        """The next token of every row (the pad id for finished rows), as a (B,) tensor."""
        if self.done:
            raise StopIteration
        if self._pending is not None:
            with torch.inference_mode():
                self._logits = self.decoder(self._pending[:, None], cache=self.cache, last_only=True)[:, -1]
        token = self.sampler(self._logits)
        if any(self.finished):
            token = torch.where(self._finished, self._pad, token)
        self._pending = token
        self.steps += 1
        return token

    def finish(self, row: int) -> None:
        self.finished[row] = True
        self._finished[row] = True


def decoding_layout(decoder: Decoder, batch: int) -> int:
    """Lay the decoder's matmul weights (the output head too, tied or not) out for products of ``batch``
    rows; the number re-laid (0 when already so, and on devices or dtypes ``vlmkit.nn.gemv_layout`` leaves
    alone). A switch copies each matrix once, about one batch-1 decoding step.

    A tied output head is the token embedding, whose lookups then gather a strided column per token:
    a few microseconds per token, against milliseconds saved reading the head every step.
    """
    weights = [module.weight for module in decoder.modules() if isinstance(module, nn.Linear)]
    return lay_out_([*weights, decoder.output_weight], transposed=batch <= TRANSPOSED_UP_TO)


def eos_ids(decoder: Decoder, config: GenerationConfig, tokenizer: TextTokenizer | None = None) -> frozenset[int]:
    if config.eos_token_ids is not None:
        return frozenset(config.eos_token_ids)
    ids = set(decoder.config.eos_token_ids)
    if tokenizer is not None and tokenizer.eos_id is not None:
        ids.add(tokenizer.eos_id)
    return frozenset(ids)


class TextStream:
    """Token ids in, text pieces out: never half a multi-byte character, never part of a stop string.

    Each ``push`` re-decodes the row's ids (decoders such as byte-level BPE only make sense on the
    whole sequence) and releases the new text except a tail that is an incomplete character
    (decoded as U+FFFD) or could still grow into a stop string. ``text`` is everything released
    plus ``flush()``: the output cut before the first stop string.
    """

    def __init__(self, tokenizer: TextTokenizer, stop: Sequence[str] = ()) -> None:
        self.tokenizer = tokenizer
        self.stop = tuple(stop)
        self.ids: list[int] = []
        self.released = 0
        self.stopped = False
        self._text = ""

    def push(self, token: int) -> str:
        if self.stopped:
            return ""
        self.ids.append(token)
        self._text = self.tokenizer.decode(self.ids)
        hits = [i for i in (self._text.find(s, max(0, self.released - len(s))) for s in self.stop) if i >= 0]
        if hits:
            self.stopped = True
            self._text = self._text[: min(hits)]
            return self._release(len(self._text))
        safe = len(self._text)
        while safe > self.released and self._text[safe - 1] == "\ufffd":
            safe -= 1
        for stop in self.stop:
            for size in range(min(len(stop) - 1, safe - self.released), 0, -1):
                if self._text[safe - size : safe] == stop[:size]:
                    safe -= size
                    break
        return self._release(safe)

    def flush(self) -> str:
        return self._release(len(self._text))

    def _release(self, end: int) -> str:
        piece = self._text[self.released : end] if end > self.released else ""
        self.released = max(self.released, end)
        return piece

    @property
    def text(self) -> str:
        return self._text


def _prompt_tensors(
    decoder: Decoder, prompts: torch.Tensor | Sequence[Sequence[int]], attention_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(prompts, torch.Tensor):
        ids = prompts if prompts.ndim == 2 else prompts[None]
    else:
        ids, attention_mask = pad_left(prompts, decoder.config.pad_token_id)
        attention_mask = None if bool(attention_mask.all()) else attention_mask
    ids = ids.to(decoder.device)
    return ids, None if attention_mask is None else attention_mask.to(decoder.device)


def generate(
    decoder: Decoder,
    prompts: torch.Tensor | Sequence[Sequence[int]],
    config: GenerationConfig | None = None,
    *,
    attention_mask: torch.Tensor | None = None,
    inputs_embeds: torch.Tensor | None = None,
    cache: KVCache | None = None,
    tokenizer: TextTokenizer | None = None,
    segments: torch.Tensor | None = None,
) -> list[list[int]]:
    """Generated token ids per prompt, without the prompt and without the EOS that ended them.

    ``prompts`` are token lists (left-padded here) or a (B, L) tensor with its ``attention_mask``
    (left padding). Stop strings need ``tokenizer``; a row that hits one ends with the token that
    completed it (``generate_text`` cuts the text). ``inputs_embeds`` replace the prompt's embeddings
    (a VLM's spliced image tokens); ``cache`` continues a cached prefix (a chat); ``segments`` (B, L) are a
    prefix-LM's attention blocks over the prompt (a suffix already begun is read causally).
    """
    runs = _run(decoder, prompts, config, attention_mask, inputs_embeds, cache, tokenizer, segments)
    return [ids for ids, _ in runs]


def generate_text(
    decoder: Decoder,
    prompts: torch.Tensor | Sequence[Sequence[int]],
    tokenizer: TextTokenizer,
    config: GenerationConfig | None = None,
    **options: torch.Tensor | KVCache | None,
) -> list[str]:
    """Like ``generate``, decoded, and cut before the first stop string."""
    return [text for _, text in _run(decoder, prompts, config, tokenizer=tokenizer, **options)]  # type: ignore[misc]


def _run(
    decoder: Decoder,
    prompts: torch.Tensor | Sequence[Sequence[int]],
    config: GenerationConfig | None = None,
    attention_mask: torch.Tensor | None = None,
    inputs_embeds: torch.Tensor | None = None,
    cache: KVCache | None = None,
    tokenizer: TextTokenizer | None = None,
    segments: torch.Tensor | None = None,
) -> list[tuple[list[int], str]]:
    config = config or GenerationConfig()
    if config.stop and tokenizer is None:
        raise InputError("stop strings need a tokenizer to recognise them")
    ids, mask = _prompt_tensors(decoder, prompts, attention_mask)
    segments = None if segments is None else segments.to(ids.device)
    run = Decoding(decoder, ids, mask, config, inputs_embeds=inputs_embeds, cache=cache, segments=segments)
    ends = eos_ids(decoder, config, tokenizer)
    outputs: list[list[int]] = [[] for _ in range(ids.shape[0])]
    streams = [TextStream(tokenizer, config.stop) for _ in outputs] if tokenizer is not None else None
    while not run.done:
        for row, token in enumerate(run.step().tolist()):
            if run.finished[row]:
                continue
            if token in ends:
                run.finish(row)
                continue
            outputs[row].append(token)
            if streams is not None and config.stop:
                streams[row].push(token)
                if streams[row].stopped:
                    run.finish(row)
    if streams is None:
        return [(out, "") for out in outputs]
    texts = []
    for out, stream in zip(outputs, streams, strict=True):
        texts.append(stream.text if config.stop else tokenizer.decode(out))  # type: ignore[union-attr]
    return list(zip(outputs, texts, strict=True))


def stream_text(
    decoder: Decoder,
    prompt: torch.Tensor | Sequence[int],
    tokenizer: TextTokenizer,
    config: GenerationConfig | None = None,
    *,
    inputs_embeds: torch.Tensor | None = None,
    cache: KVCache | None = None,
    on_token: list[int] | None = None,
) -> Iterator[str]:
    """Text pieces of one prompt's continuation as they are generated (concatenated: the full text).

    ``on_token``, if given, receives every generated token id (EOS excluded), for callers that keep
    the conversation's ids (a chat).
    """
    config = config or GenerationConfig()
    ids = torch.as_tensor(prompt, dtype=torch.long).reshape(1, -1).to(decoder.device)
    run = Decoding(decoder, ids, None, config, inputs_embeds=inputs_embeds, cache=cache)
    ends = eos_ids(decoder, config, tokenizer)
    stream = TextStream(tokenizer, config.stop)
    while not run.done:
        token = int(run.step()[0])
        if token in ends:
            break
        if on_token is not None:
            on_token.append(token)
        piece = stream.push(token)
        if piece:
            yield piece
        if stream.stopped:
            break
    rest = stream.flush()
    if rest:
        yield rest
