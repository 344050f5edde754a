"""A sparse PaliGemma ``config.json`` (the hub's leave most fields to defaults) converts as transformers reads it.

Our converter on the sparse file must give the same vlmkit config as on transformers' own expansion of
it (``PaliGemmaConfig.from_dict(...).to_dict()``), where every default is written out.
"""

from __future__ import annotations

import pytest
import transformers

from vlmkit.checkpoints.paligemma import vlm_config_from_hf

# The shape of paligemma-3b-pt-224's config.json: the sizes given, everything else left to defaults.
SPARSE_3B = {
    "model_type": "paligemma",
    "bos_token_id": 2,
    "eos_token_id": 1,
    "pad_token_id": 0,
    "hidden_size": 2048,
    "image_token_index": 257152,
    "projection_dim": 2048,
    "vocab_size": 257216,
    "text_config": {
        "model_type": "gemma",
        "hidden_size": 2048,
        "intermediate_size": 16384,
        "num_attention_heads": 8,
        "num_hidden_layers": 18,
        "num_key_value_heads": 1,
        "num_image_tokens": 256,
        "vocab_size": 257216,
    },
    "vision_config": {
        "model_type": "siglip_vision_model",
        "hidden_size": 1152,
        "intermediate_size": 4304,
        "num_attention_heads": 16,
        "num_hidden_layers": 27,
        "patch_size": 14,
        "projection_dim": 2048,
        "vision_use_head": False,
    },
}


@pytest.mark.parametrize("sparse", [SPARSE_3B, {"model_type": "paligemma"}], ids=["3b-pt-224", "all_defaults"])
def test_sparse_config_converts_as_transformers_expands_it(sparse):
    expanded = transformers.PaliGemmaConfig.from_dict(sparse).to_dict()
    ours = vlm_config_from_hf(sparse, "sparse")
    assert ours == vlm_config_from_hf(expanded, "expanded")
    assert (ours.decoder.dim_per_head, ours.decoder.kv_heads, ours.decoder.act) == (256, 1, "gelu_tanh")
    assert (ours.vision.image_size, ours.vision.patch_size, ours.vision.pooling) == (224, 14, "mean")
    assert ours.tokens_per_image == 256 and ours.chat_template == "paligemma"
