"""Generation: sampling options, stopping, streaming text, and batches equal to single prompts."""

from __future__ import annotations

import pytest
import torch

from tiny_vlm import tiny_chat_tokenizer, tiny_decoder_config
from vlmkit.errors import InputError
from vlmkit.models import Decoder
from vlmkit.models.generation import (
    GenerationConfig,
    TextStream,
    _Sampler,
    decoding_layout,
    generate,
    generate_text,
    stream_text,
)


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_chat_tokenizer()


@pytest.fixture
def decoder(tokenizer):
    torch.manual_seed(0)
    model = Decoder(tiny_decoder_config(tokenizer)).eval()
    with torch.no_grad():  # sharper distributions than the 0.02 init, so samples differ from argmax
        for param in model.parameters():
            param.mul_(8 if param.ndim > 1 else 1)
    model.tokenizer = tokenizer
    return model


PROMPTS = [[1, 40, 50, 60, 70], [1, 90], [1, 100, 110, 120]]


def test_batched_greedy_equals_one_by_one(decoder):
    config = GenerationConfig(max_new_tokens=10, eos_token_ids=(0,))
    batched = generate(decoder, PROMPTS, config)
    assert batched == [generate(decoder, [p], config)[0] for p in PROMPTS]
    assert all(len(row) == 10 for row in batched)


def test_sampling_is_seeded_and_degenerates_to_greedy(decoder):
    greedy = generate(decoder, PROMPTS, GenerationConfig(max_new_tokens=8, eos_token_ids=(0,)))
    hot = GenerationConfig(max_new_tokens=8, temperature=1.5, seed=3, eos_token_ids=(0,))
    first, again = generate(decoder, PROMPTS, hot), generate(decoder, PROMPTS, hot)
    assert first == again and first != greedy
    for narrow in (dict(top_k=1), dict(top_p=1e-6)):
        config = GenerationConfig(max_new_tokens=8, temperature=1.5, seed=4, eos_token_ids=(0,), **narrow)
        assert generate(decoder, PROMPTS, config) == greedy


def test_sampler_rules():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    ids = torch.tensor([[0, 1]])
    sampler = _Sampler(GenerationConfig(repetition_penalty=4.0), ids, None, 4)
    assert sampler(logits.clone()).item() == 3  # 2 -> 0.5 and -1 -> -4 for the seen tokens 0 and 1
    assert sampler.seen.tolist() == [[True, True, False, True]]
    penalised = _Sampler(GenerationConfig(repetition_penalty=8.0), torch.tensor([[3, 0]]), None, 4)
    assert penalised(logits.clone()).item() == 2  # 3 -> 0.375 and 2 -> 0.25 fall below token 2's 0.5
    top_k = _Sampler(GenerationConfig(temperature=1.0, top_k=2, seed=0), ids, None, 4)
    assert {top_k(logits.clone()).item() for _ in range(50)} <= {0, 3}


def test_eos_ends_a_row_and_is_not_returned(decoder):
    free = generate(decoder, PROMPTS, GenerationConfig(max_new_tokens=6, eos_token_ids=(0,)))
    stop_token = free[1][2]
    cut = generate(decoder, PROMPTS, GenerationConfig(max_new_tokens=6, eos_token_ids=(stop_token,)))
    assert cut[1] == free[1][: free[1].index(stop_token)]


def test_stop_strings_cut_the_text(decoder, tokenizer):
    free = generate_text(decoder, PROMPTS[:1], tokenizer, GenerationConfig(max_new_tokens=12, eos_token_ids=(0,)))[0]
    stop = free[len(free) // 2 : len(free) // 2 + 2]
    assert stop.strip()
    cut = generate_text(
        decoder, PROMPTS[:1], tokenizer, GenerationConfig(max_new_tokens=12, eos_token_ids=(0,), stop=(stop,))
    )[0]
    assert cut == free[: free.index(stop)]
    with pytest.raises(InputError, match="need a tokenizer"):
        generate(decoder, PROMPTS, GenerationConfig(stop=("x",)))


def test_streamed_pieces_join_to_the_text(decoder, tokenizer):
    config = GenerationConfig(max_new_tokens=12, eos_token_ids=(0,))
    pieces = list(stream_text(decoder, PROMPTS[0], tokenizer, config))
    assert len(pieces) > 1
    assert "".join(pieces) == generate_text(decoder, PROMPTS[:1], tokenizer, config)[0]


def test_text_stream_holds_back_partial_characters_and_stop_prefixes(tokenizer):
    text = "red é circle"
    ids = tokenizer.tokenizer.encode(text, add_special_tokens=False).ids
    stream = TextStream(tokenizer)
    pieces = [stream.push(i) for i in ids] + [stream.flush()]
    assert "".join(pieces) == text and not any("\ufffd" in p for p in pieces)
    stream = TextStream(tokenizer, stop=(" circle",))
    pieces = [stream.push(i) for i in ids] + [stream.flush()]
    assert "".join(pieces) == "red é" and stream.stopped


def test_prompt_too_long_is_an_input_error(decoder):
    with pytest.raises(InputError, match="max_positions"):
        generate(decoder, [[5] * 200])


def test_generation_relays_weights_and_keeps_greedy_output(tokenizer):
    torch.manual_seed(1)
    decoder = Decoder(tiny_decoder_config(tokenizer)).eval()
    prompt = torch.tensor([PROMPTS[0]])
    expected = []
    with torch.no_grad():  # uncached full forwards, weights as built (row-major)
        ids = prompt
        for _ in range(8):
            token = decoder(ids)[0, -1].argmax()
            expected.append(int(token))
            ids = torch.cat([ids, token.view(1, 1)], dim=1)
    assert decoder.output_weight.is_contiguous()
    config = GenerationConfig(max_new_tokens=8, eos_token_ids=())
    assert generate(decoder, prompt, config) == [expected]
    assert decoder.output_weight.t().is_contiguous() and decoder.blocks[0].attn.qkv.weight.t().is_contiguous()
    assert decoding_layout(decoder, 1) == 0
    generate(decoder, PROMPTS, config)  # three rows: row-major again
    assert decoder.output_weight.is_contiguous() and decoder.blocks[0].attn.qkv.weight.is_contiguous()
