"""vlmkit's VisionLanguageModel matches transformers' PaliGemmaForConditionalGeneration on the same weights.

A tiny random PaliGemma of our own shape (one key/value head, ``head_dim`` 16 != 48 / 4, a 2-block
SigLIP) is saved by transformers and loaded by ``vlmkit.load``: logits within 1e-4 (float32) with and
without ``token_type_ids``, and identical greedy generations, in both key layouts (the saved
``language_model.model.*`` one and the in-memory ``model.language_model.*`` + ``lm_head`` one).
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import vlmkit
from paligemma_kit import BOS, EOS, IMAGE, hf_paligemma
from vlmkit.errors import CheckpointError
from vlmkit.models import VisionLanguageModel
from vlmkit.models.generation import GenerationConfig

TOL = 1e-4
TOKENS = 16  # (32 / 8)^2 image tokens


def save_in_memory_layout(hf: torch.nn.Module, directory) -> None:
    """Overwrite the weights with transformers 5's in-memory names (``model.*`` and an ``lm_head``)."""
    tensors = {key: value.contiguous().clone() for key, value in hf.state_dict().items()}
    assert "lm_head.weight" in tensors and "model.language_model.embed_tokens.weight" in tensors
    save_file(tensors, directory / "model.safetensors")


@pytest.fixture(scope="module", params=["saved", "in_memory"])
def pair(request, tmp_path_factory):
    torch.manual_seed(0)
    hf = hf_paligemma()
    directory = tmp_path_factory.mktemp(request.param)
    hf.save_pretrained(directory)
    if request.param == "in_memory":
        save_in_memory_layout(hf, directory)
    ours = vlmkit.load(directory)
    assert isinstance(ours, VisionLanguageModel)
    return hf, ours


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two rows of the processor's layout: image tokens, BOS, prefix, "\\n"; then a suffix (types 1)."""
    first = [*[IMAGE] * TOKENS, BOS, 5, 6, 7, 8, 9, 10, 11, 40, 41, 42, EOS]
    second = [*[IMAGE] * TOKENS, BOS, 20, 21, 22, 9, 50, 51, 52, 53, 54, 55, EOS]
    types = [[0] * (TOKENS + 8) + [1] * 4, [0] * (TOKENS + 5) + [1] * 7]
    return torch.tensor([first, second]), torch.tensor(types), torch.randn(2, 3, 32, 32)


def test_config_is_gemma_by_fields(pair):
    _, ours = pair
    decoder = ours.config.decoder
    assert (decoder.norm, decoder.embed_scale, decoder.position_offset, decoder.attention) == (
        "rms_unit_offset",
        True,
        1,
        "prefix",
    )
    assert (decoder.dim_per_head, decoder.kv_heads, decoder.act, decoder.tie_embeddings) == (16, 1, "gelu_tanh", True)
    assert ours.decoder.lm_head is None and ours.tokens_per_image == TOKENS
    assert ours.vision.head is None and ours.projector.fc2 is None


@pytest.mark.parametrize("typed", [True, False], ids=["token_type_ids", "no_types"])
def test_logits_match(pair, typed):
    hf, ours = pair
    ids, types, pixels = _batch()
    inputs = {"input_ids": ids, "pixel_values": pixels, "attention_mask": torch.ones_like(ids)}
    if typed:
        inputs["token_type_ids"] = types
    with torch.no_grad():
        expected = hf(**inputs).logits
        got = ours(**inputs).logits
    torch.testing.assert_close(got, expected, atol=TOL, rtol=0)


def test_suffix_is_causal_and_prefix_bidirectional(pair):
    """The parity above would also hold for a wrong mask if both were wrong alike; this pins the mask itself."""
    _, ours = pair
    ids, types, pixels = _batch()
    with torch.no_grad():
        base = ours(input_ids=ids, pixel_values=pixels, token_type_ids=types).logits
        changed = ids.clone()
        changed[:, -2] = 60  # a late suffix token
        after = ours(input_ids=changed, pixel_values=pixels, token_type_ids=types).logits
        changed = ids.clone()
        changed[0, TOKENS + 7] = 60  # the first row's last prefix token
        prefix = ours(input_ids=changed, pixel_values=pixels, token_type_ids=types).logits
    torch.testing.assert_close(after[:, :-2], base[:, :-2], atol=0, rtol=0)  # nothing earlier sees it
    assert (prefix[0, : TOKENS + 7] - base[0, : TOKENS + 7]).abs().max() > 1e-3  # the whole prefix sees it


@pytest.mark.parametrize("suffix", [0, 3], ids=["after_prefix", "suffix_begun"])
def test_greedy_generation_matches(pair, suffix):
    hf, ours = pair
    ids, types, pixels = _batch()
    length = TOKENS + 8 + suffix
    prompt, prompt_types = ids[:1, :length], types[:1, :length]
    with torch.no_grad():
        expected = hf.generate(
            input_ids=prompt,
            pixel_values=pixels[:1],
            token_type_ids=prompt_types,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=12,
            do_sample=False,
        )[0, length:].tolist()
    expected = expected[: expected.index(EOS)] if EOS in expected else expected
    got = ours.generate(
        [prompt[0].tolist()], pixels[:1], GenerationConfig(max_new_tokens=12), token_type_ids=[prompt_types[0].tolist()]
    )[0]
    assert got == expected
    assert len(set(got)) > 1  # a generation that repeats one token would match by accident


def test_batched_generation_with_left_padding_matches(pair):
    hf, ours = pair
    ids, _, pixels = _batch()
    prompts = [ids[0, : TOKENS + 8].tolist(), ids[1, : TOKENS + 5].tolist()]
    width = len(prompts[0])
    padded = torch.tensor([prompts[0], [0] * (width - len(prompts[1])) + prompts[1]])
    mask = torch.tensor([[1] * width, [0] * (width - len(prompts[1])) + [1] * len(prompts[1])])
    with torch.no_grad():
        expected = hf.generate(
            input_ids=padded,
            pixel_values=pixels,
            token_type_ids=torch.zeros_like(padded),
            attention_mask=mask,
            max_new_tokens=8,
            do_sample=False,
        )[:, width:].tolist()
    got = ours.generate(prompts, pixels, GenerationConfig(max_new_tokens=8, eos_token_ids=(999,)))
    assert got == expected


def test_vision_head_loads_and_is_unused(tmp_path):
    torch.manual_seed(1)
    hf = hf_paligemma(vision_head=True)
    hf.save_pretrained(tmp_path)
    ours = vlmkit.load(tmp_path)
    ids, types, pixels = _batch()
    with torch.no_grad():
        expected = hf(input_ids=ids, pixel_values=pixels, token_type_ids=types).logits
        got = ours(input_ids=ids, pixel_values=pixels, token_type_ids=types).logits
    assert ours.vision.head is not None
    torch.testing.assert_close(got, expected, atol=TOL, rtol=0)


def test_paligemma2_is_refused_in_one_line(tmp_path):
    hf = hf_paligemma()
    hf.save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    raw = json.loads(path.read_text())
    raw["text_config"]["model_type"] = "gemma2"
    path.write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match="gemma2"):
        vlmkit.load(tmp_path)


def test_vlmkit_directory_round_trip_is_bit_identical(pair, tmp_path):
    """The Gemma fields (norm, embed_scale, position_offset) survive ``save_pretrained`` -> ``load``."""
    _, ours = pair
    vlmkit.save_pretrained(ours, tmp_path)
    again = vlmkit.load(tmp_path)
    assert again.config == ours.config
    ids, types, pixels = _batch()
    with torch.no_grad():
        a = ours(input_ids=ids, pixel_values=pixels, token_type_ids=types).logits
        b = again(input_ids=ids, pixel_values=pixels, token_type_ids=types).logits
    assert torch.equal(a, b)


@pytest.mark.parametrize("typed", [True, False], ids=["token_type_ids", "blocks_from_labels"])
def test_training_loss_matches(pair, typed):
    """Labels on the suffix only (as the processor makes them): the same next-token loss as transformers',
    whether vlmkit reads the blocks from token_type_ids or, as its training recipes do, from the labels."""
    hf, ours = pair
    ids, types, pixels = _batch()
    labels = torch.where(types == 1, ids, torch.full_like(ids, -100))
    with torch.no_grad():
        expected = hf(input_ids=ids, pixel_values=pixels, token_type_ids=types, labels=labels).loss
        got = ours(input_ids=ids, pixel_values=pixels, token_type_ids=types if typed else None, labels=labels).loss
    torch.testing.assert_close(got, expected, atol=TOL, rtol=0)
