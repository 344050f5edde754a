"""vlmkit's Decoder matches transformers' Llama-family causal LMs on the same weights.

Logits within 1e-4 (float32) on padded and unpadded batches, and identical greedy generations,
for GQA, tied and untied heads, non-default rope theta and scalings, and Qwen2's q/k/v biases.
"""

from __future__ import annotations

import pytest
import torch
import transformers

from testkit import perturb
from vlmkit.checkpoints import from_pretrained
from vlmkit.models import Decoder
from vlmkit.models.generation import GenerationConfig, generate

TOL = 1e-4


def _hf_decoder(family: str, tied: bool, rope: dict | None):
    common = dict(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        rms_norm_eps=1e-5,
        tie_word_embeddings=tied,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    if family == "qwen2":
        config = transformers.Qwen2Config(**common, rope_parameters={"rope_type": "default", "rope_theta": 5000.0})
        return transformers.Qwen2ForCausalLM(config)
    config = transformers.LlamaConfig(**common, rope_parameters=rope)
    return transformers.LlamaForCausalLM(config)


CASES = [
    ("llama", True, {"rope_type": "default", "rope_theta": 500.0}),
    ("llama", False, {"rope_type": "linear", "rope_theta": 20000.0, "factor": 2.0}),
    (
        "llama",
        True,
        {
            "rope_type": "llama3",
            "rope_theta": 1000.0,
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16,
        },
    ),
    ("qwen2", False, None),
]


@pytest.fixture(params=CASES, ids=["tied-theta500", "untied-linear", "llama3", "qwen2-bias"])
def pair(request, tmp_path):
    hf = _hf_decoder(*request.param).eval()
    perturb(hf)
    hf.save_pretrained(tmp_path)
    ours = from_pretrained(tmp_path)
    assert isinstance(ours, Decoder)
    return hf, ours


def test_logits_match_with_and_without_padding(pair):
    hf, ours = pair
    ids = torch.randint(3, 97, (3, 11))
    mask = torch.ones_like(ids)
    mask[1, :4] = 0  # left padding
    mask[2, :1] = 0
    with torch.no_grad():
        for m in (None, mask):
            expected = hf(input_ids=ids, attention_mask=m).logits
            got = ours(ids, m)
            real = slice(None) if m is None else m.bool()
            torch.testing.assert_close(got[real], expected[real], atol=TOL, rtol=0)


def test_greedy_generation_matches_transformers(pair):
    hf, ours = pair
    prompts = [[1, 5, 9, 33, 60, 7], [1, 40, 41], [1, 88, 3, 17, 25]]
    config = GenerationConfig(max_new_tokens=12)
    batched = generate(ours, prompts, config)
    for prompt, got in zip(prompts, batched, strict=True):
        out = hf.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=12, pad_token_id=0)
        expected = out[0, len(prompt) :].tolist()
        if 2 in expected:
            expected = expected[: expected.index(2)]
        assert got == expected
        assert generate(ours, [prompt], config)[0] == got  # batch of one == row of a padded batch


def test_cached_decoding_equals_full_forward(pair):
    """Prefill + one-token steps (and a chat-style second prefill) give the full forward's logits."""
    _, ours = pair
    ids = torch.randint(3, 97, (2, 14))
    with torch.no_grad():
        full = ours(ids)
        cache = ours.new_cache(2, 4)  # too small on purpose: it must grow
        pieces = [ours(ids[:, :6], cache=cache), ours(ids[:, 6:9], cache=cache)]
        pieces += [ours(ids[:, i : i + 1], cache=cache) for i in range(9, 14)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=TOL, rtol=0)
    assert cache.length == 14
