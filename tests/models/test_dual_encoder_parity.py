"""vlmkit's CLIP and SigLIP match transformers' on the same weights (float32, max abs diff <= 1e-4)."""

from __future__ import annotations

import pytest
import torch
import transformers

from testkit import hf_clip, perturb
from vlmkit.checkpoints import from_pretrained

TOL = 1e-4


def _hf_siglip(act: str, image_size: int, patch_size: int):
    text = dict(
        vocab_size=99,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=12,
        hidden_act=act,
    )
    vision = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=image_size,
        patch_size=patch_size,
        hidden_act=act,
    )
    return transformers.SiglipModel(transformers.SiglipConfig(text_config=text, vision_config=vision))


def _texts(length: int, eos: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(3, 90, (3, length))
    mask = torch.ones_like(ids)
    for row, end in enumerate((length - 1, 5, 2)):  # EOS at different places, padding after it
        ids[row, end] = eos
        ids[row, end + 1 :] = 1
        mask[row, end + 1 :] = 0
    return ids, mask


def _compare(hf_model, tmp_path, pixels, ids, mask) -> None:
    perturb(hf_model).eval().save_pretrained(tmp_path)
    ours = from_pretrained(tmp_path)
    with torch.no_grad():
        expected = hf_model(input_ids=ids, attention_mask=mask, pixel_values=pixels)
        got = ours(pixels, ids, mask)
    torch.testing.assert_close(got.image_embeds, expected.image_embeds, atol=TOL, rtol=0)
    torch.testing.assert_close(got.text_embeds, expected.text_embeds, atol=TOL, rtol=0)
    torch.testing.assert_close(got.logits_per_image, expected.logits_per_image, atol=TOL, rtol=0)


@pytest.mark.parametrize(
    ("act", "projection_dim", "image_size", "patch_size", "eos"),
    [("quick_gelu", 24, 48, 8, 98), ("gelu", 40, 64, 16, 98), ("quick_gelu", 16, 30, 10, 2)],
)
def test_clip_matches_transformers(tmp_path, act, projection_dim, image_size, patch_size, eos):
    model = hf_clip(
        act,
        projection_dim,
        image_size,
        patch_size,
        eos,
        vision_width=40,
        vision_heads=5,
        vision_layers=3,
        context_length=20,
    )
    ids, mask = _texts(20, eos if eos != 2 else 98)  # legacy eos=2 configs pool at argmax: the largest id
    _compare(model, tmp_path, torch.randn(2, 3, image_size, image_size), ids, mask)


@pytest.mark.parametrize(("act", "image_size", "patch_size"), [("gelu_pytorch_tanh", 32, 8), ("gelu", 48, 16)])
def test_siglip_matches_transformers(tmp_path, act, image_size, patch_size):
    model = _hf_siglip(act, image_size, patch_size)
    ids = torch.randint(2, 90, (3, 12))
    _compare(model, tmp_path, torch.randn(2, 3, image_size, image_size), ids, None)
    # SigLIP was trained without a padding mask, but one given must be honoured as transformers does.
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask, pixel_values=torch.zeros(1, 3, image_size, image_size))
        got = from_pretrained(tmp_path).encode_text(ids, mask)
    torch.testing.assert_close(got, expected.text_embeds, atol=TOL, rtol=0)


def test_left_padded_clip_text_keeps_its_mask(tmp_path):
    """Right padding may drop the mask under causal attention; left padding must not."""
    model = hf_clip(projection_dim=16)
    model.save_pretrained(tmp_path)
    ours = from_pretrained(tmp_path)
    ids = torch.tensor([[1, 1, 5, 6, 98], [4, 5, 6, 7, 98]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask, pixel_values=torch.zeros(1, 3, 32, 32)).text_embeds
        torch.testing.assert_close(ours.encode_text(ids, mask), expected, atol=TOL, rtol=0)
