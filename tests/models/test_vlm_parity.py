"""vlmkit's VisionLanguageModel matches transformers' LlavaForConditionalGeneration on the same weights.

Both key layouts load: the one transformers writes (``language_model.model.*``, the hub's) and its
in-memory one (``model.language_model.*``, ``lm_head.*``).
"""

from __future__ import annotations

import pytest
import torch
import transformers
from safetensors.torch import save_file

from vlmkit.checkpoints import from_pretrained
from vlmkit.errors import InputError
from vlmkit.models import VisionLanguageModel

TOL = 1e-4
IMAGE = 90


def _hf_llava(strategy: str, layer: int):
    vision = transformers.CLIPVisionConfig(
        hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4, image_size=32, patch_size=8
    )
    text = transformers.LlamaConfig(
        vocab_size=96,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        rope_parameters={"rope_type": "default", "rope_theta": 1000.0},
    )
    config = transformers.LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=IMAGE,
        vision_feature_select_strategy=strategy,
        vision_feature_layer=layer,
    )
    model = transformers.LlavaForConditionalGeneration(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    return model


def _prompt(tokens_per_image: int) -> torch.Tensor:
    """Two rows: one image mid-prompt in the first, two images in the second."""
    first = [1, 5, 6, *[IMAGE] * tokens_per_image, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]
    second = [1, *[IMAGE] * tokens_per_image, 20, *[IMAGE] * tokens_per_image, 21]
    second = [0] * (len(first) - len(second)) + second if len(second) < len(first) else second
    width = max(len(first), len(second))
    first = first + [0] * (width - len(first))
    return torch.tensor([first, second])


@pytest.mark.parametrize(("strategy", "layer", "in_memory_keys"), [("default", -2, False), ("full", -1, True)])
def test_llava_logits_match(tmp_path, strategy, layer, in_memory_keys):
    hf = _hf_llava(strategy, layer)
    hf.save_pretrained(tmp_path)
    if in_memory_keys:
        (tmp_path / "model.safetensors").unlink()
        save_file({k: v.contiguous() for k, v in hf.state_dict().items()}, tmp_path / "model.safetensors")
    ours = from_pretrained(tmp_path)
    assert isinstance(ours, VisionLanguageModel)
    assert ours.tokens_per_image == 16 + (strategy == "full")
    ids = _prompt(ours.tokens_per_image)
    pixels = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = hf(input_ids=ids, pixel_values=pixels).logits
        got = ours(ids, pixels).logits
    torch.testing.assert_close(got, expected, atol=TOL, rtol=0)


def test_image_count_mismatch_is_an_input_error(tmp_path):
    hf = _hf_llava("default", -2)
    hf.save_pretrained(tmp_path)
    ours = from_pretrained(tmp_path)
    ids = _prompt(ours.tokens_per_image)
    with pytest.raises(InputError, match="holds 48 image tokens but 2 image"):
        ours(ids, torch.randn(2, 3, 32, 32))
