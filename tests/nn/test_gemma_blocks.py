"""Gemma's RMSNorm and scaled embedding round exactly as transformers' do, in bfloat16 as in float32.

Whole-model bfloat16 logits differ by kernel order far more than by these roundings, so the facts are
pinned here, block by block, bit for bit.
"""

from __future__ import annotations

import pytest
import torch
from transformers.models.gemma.modeling_gemma import GemmaRMSNorm, GemmaTextScaledWordEmbedding

from vlmkit.nn.embedding import ScaledEmbedding
from vlmkit.nn.norms import RMSNorm


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_unit_offset_rms_norm_is_gemmas(dtype):
    x = (torch.randn(3, 7, 64) * 4).to(dtype)
    weight = torch.randn(64) * 0.5
    theirs, ours = GemmaRMSNorm(64, eps=1e-6), RMSNorm(64, eps=1e-6, unit_offset=True)
    with torch.no_grad():
        theirs.weight.copy_(weight)
        ours.weight.copy_(weight)
    theirs, ours = theirs.to(dtype), ours.to(dtype)
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    torch.testing.assert_close(got, expected, atol=1e-6 if dtype == torch.float32 else 0, rtol=0)
    if dtype == torch.bfloat16:  # Llama's order (cast, then multiply by 1 + w) rounds differently
        llama = ours.weight.new_ones(64) + ours.weight
        assert not torch.equal(llama * torch.nn.functional.rms_norm(x.float(), (64,), eps=1e-6).to(dtype), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_scaled_embedding_rounds_the_factor_like_gemma(dtype):
    width = 3072  # sqrt(3072) = 55.43, 55.5 in bfloat16
    theirs = GemmaTextScaledWordEmbedding(10, width, padding_idx=0, embed_scale=width**0.5)
    ours = ScaledEmbedding(10, width, width**0.5)
    with torch.no_grad():
        ours.weight.copy_(theirs.weight)
    theirs, ours = theirs.to(dtype), ours.to(dtype)
    ids = torch.tensor([[1, 5, 9]])
    with torch.no_grad():
        assert torch.equal(ours(ids), theirs(ids))
