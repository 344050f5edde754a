"""The BERT text flavour against transformers, EfficientNet's padding, and ConSE's convex combination."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from testkit import TINY_EFFNET, tiny_bert_text, tiny_conse
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.checkpoints.bert import bert_tensors
from vlmkit.models.conse import ConSEModel
from vlmkit.models.efficientnet import ConvNorm, EfficientNet
from vlmkit.models.text import TextTransformer


def test_bert_flavour_matches_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    hf_config = transformers.BertConfig(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=40,
        type_vocab_size=2,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
    )
    reference = transformers.BertModel(hf_config).eval()
    reference.save_pretrained(tmp_path)
    ours = TextTransformer(tiny_bert_text()).eval()
    ours.load_state_dict(
        {
            k.removeprefix("text."): v
            for k, v in bert_tensors(
                tmp_path / "model.safetensors", ours.config, {f"text.{k}": v for k, v in ours.state_dict().items()}
            ).items()
        }
    )
    ids = torch.randint(1, 99, (3, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # padding must not change the mean
    mask[2, 3:] = 0
    with torch.no_grad():
        hidden = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        expected = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        got = ours(ids, mask)
    assert (got - expected).abs().max() <= 1e-4


def test_same_padding_splits_the_odd_pixel_after():
    conv = ConvNorm(1, 1, kernel=3, stride=2, same_padding=True)
    padded = conv._pad(torch.zeros(1, 1, 8, 8))
    assert padded.shape[-2:] == (9, 9)  # TensorFlow SAME on an even input: 0 before, 1 after
    assert EfficientNet(TINY_EFFNET).eval()(torch.randn(2, 3, 32, 32)).shape == (2, 7)


def test_image_embedding_is_the_convex_combination_of_the_top_classes():
    model = tiny_conse(top_k=3)
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        probabilities = model.class_probabilities(pixels)
        got = model.encode_image(pixels)
    for row in range(2):
        top = probabilities[row].argsort(descending=True)[:3]
        mixed = (probabilities[row, top, None] * model.class_embeddings[top]).sum(0)
        assert torch.allclose(got[row], F.normalize(mixed, dim=0), atol=1e-6)


def test_conse_directory_round_trip(tmp_path):
    model = tiny_conse()
    save_pretrained(model, tmp_path / "m")
    loaded = from_pretrained(tmp_path / "m")
    assert isinstance(loaded, ConSEModel) and loaded.config == model.config
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.encode_image(pixels), model.encode_image(pixels))
    assert torch.equal(loaded.class_embeddings, model.class_embeddings)
