"""The bert-family, prefix-LM decoder: who sees whom, loss at the labels only, and cached generation."""

from __future__ import annotations

import pytest
import torch

from tiny_vlm import tiny_chat_tokenizer, tiny_decoder_config
from vlmkit.models import Decoder
from vlmkit.models.decoder import answer_blocks, answer_loss, causal_lm_loss
from vlmkit.models.generation import GenerationConfig, generate
from vlmkit.processing.chat import IGNORE_INDEX

BERT = dict(family="bert", attention="prefix", kv_heads=4, qkv_bias=True, out_bias=True, mlp_bias=True, act="gelu")


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_chat_tokenizer()


def sharp(decoder: Decoder) -> Decoder:
    """Weights scaled up from the 0.02 init, so that attention patterns and argmax tokens differ by input."""
    torch.manual_seed(0)
    decoder.reset_parameters()
    with torch.no_grad():
        for param in decoder.parameters():
            if param.ndim > 1:
                param.mul_(6)
    return decoder.eval()


@pytest.fixture
def prefix_decoder(tokenizer):
    return sharp(Decoder(tiny_decoder_config(tokenizer, type_vocab_size=2, **BERT)))


def test_answer_blocks_give_each_label_its_own_block():
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 7, 8, IGNORE_INDEX, IGNORE_INDEX, 9]])
    assert answer_blocks(labels).tolist() == [[0, 0, 1, 2, 3, 3, 4]]


def test_prompt_is_bidirectional_and_answers_causal(prefix_decoder):
    ids = torch.tensor([[1, 40, 50, 60, 70, 80, 90]])
    labels = torch.tensor([[IGNORE_INDEX] * 4 + [70, 80, 90]])
    segments = answer_blocks(labels)
    base = prefix_decoder(ids, segments=segments)
    later_prompt = ids.clone()
    later_prompt[0, 3] = 61
    changed = prefix_decoder(later_prompt, segments=segments)
    assert not torch.allclose(base[0, 0], changed[0, 0]), "the first prompt token should see a later one"
    later_answer = ids.clone()
    later_answer[0, 5] = 81
    changed = prefix_decoder(later_answer, segments=segments)
    torch.testing.assert_close(base[0, :5], changed[0, :5])
    assert not torch.allclose(base[0, 5], changed[0, 5])


def test_answer_loss_equals_the_loss_over_full_logits(tokenizer):
    decoder = sharp(Decoder(tiny_decoder_config(tokenizer)))
    ids = torch.tensor([[1, 40, 50, 60, 70, 80], [1, 90, 100, 110, 0, 0]])
    labels = torch.tensor([[IGNORE_INDEX] * 3 + [60, 70, 80], [IGNORE_INDEX] * 2 + [100, 110] + [IGNORE_INDEX] * 2])
    full = causal_lm_loss(decoder(ids), labels)
    torch.testing.assert_close(answer_loss(decoder, decoder.hidden_states(ids), labels), full)


def test_cached_generation_equals_recomputing_the_blocks(prefix_decoder):
    """Each generated token is a block after the prompt's, as in training; the cache must agree."""
    prompts = [[1, 40, 50, 60, 70], [1, 90, 100]]
    config = GenerationConfig(max_new_tokens=5)
    generated = generate(prefix_decoder, prompts, config)
    for prompt, tokens in zip(prompts, generated, strict=True):
        sequence = list(prompt)
        for _ in tokens:
            labels = torch.tensor([[IGNORE_INDEX] * len(prompt) + sequence[len(prompt) :]])
            logits = prefix_decoder(torch.tensor([sequence]), segments=answer_blocks(labels))
            sequence.append(int(logits[0, -1].argmax()))
        assert sequence[len(prompt) :] == tokens
    assert any(len(tokens) > 1 for tokens in generated)
