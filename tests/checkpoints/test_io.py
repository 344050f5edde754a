"""Model directories: bit-identical round trip, conversions, and clear errors for bad checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from testkit import hf_clip, tiny_model
from vlmkit.checkpoints import from_pretrained, save_pretrained
from vlmkit.errors import CheckpointError, ConfigError


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_round_trip_is_bit_identical(tmp_path, family):
    model = tiny_model(family)
    save_pretrained(model, tmp_path)
    loaded = from_pretrained(tmp_path)
    original, reloaded = model.state_dict(), loaded.state_dict()
    assert original.keys() == reloaded.keys()
    assert all(torch.equal(original[k], reloaded[k]) for k in original)
    assert loaded.config == model.config
    assert loaded.image_processor == model.image_processor
    texts = ["a red circle", "two yellow stars and a dog"]
    assert torch.equal(loaded.tokenizer(texts).input_ids, model.tokenizer(texts).input_ids)
    save_pretrained(loaded, tmp_path / "again")
    assert (tmp_path / "again" / "model.safetensors").read_bytes() == (tmp_path / "model.safetensors").read_bytes()


def test_loading_with_a_dtype_casts_floats_as_read(tmp_path):
    model = tiny_model("clip")
    save_pretrained(model, tmp_path)
    loaded = from_pretrained(tmp_path, dtype=torch.bfloat16)
    original = model.state_dict()
    for key, tensor in loaded.state_dict().items():
        expected = original[key].to(torch.bfloat16) if original[key].is_floating_point() else original[key]
        assert tensor.dtype == expected.dtype and torch.equal(tensor, expected), key


def test_truncated_weights_are_a_clear_error(tmp_path):
    save_pretrained(tiny_model(), tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not a readable safetensors file"):
        from_pretrained(tmp_path)


def test_wrong_shape_names_the_tensor(tmp_path):
    save_pretrained(tiny_model(), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["embed_dim"] = 16
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"image_projection\.weight has shape \(24, 32\), expected \(16, 32\)"):
        from_pretrained(tmp_path)


def test_bad_config_field_is_named(tmp_path):
    save_pretrained(tiny_model(), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["vision"]["act"] = "relu6"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"vision\.act: expected one of"):
        from_pretrained(tmp_path)


def test_unsupported_family_is_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="model_type 'bert' is not a supported family"):
        from_pretrained(tmp_path)


def test_missing_directory_and_offline_hub(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match="no such model directory"):
        from_pretrained(tmp_path / "nope")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match=r"openai/clip-vit-base-patch32: not a local directory.*online"):
        from_pretrained("openai/clip-vit-base-patch32")


def test_sharded_hf_checkpoint_loads(tmp_path):
    model = hf_clip()
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").exists()
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = model(pixel_values=pixels, input_ids=torch.tensor([[5, 6, 98]])).image_embeds
        got = from_pretrained(tmp_path).encode_image(pixels)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_hf_checkpoint_with_a_missing_tensor_names_it(tmp_path):
    from safetensors.torch import load_file, save_file

    model = hf_clip()
    model.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    del tensors["text_model.final_layer_norm.weight"]
    tensors["extra.weight"] = torch.zeros(1)
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(
        CheckpointError,
        match=r"missing tensors: text_model\.final_layer_norm\.weight.*"
        r"unexpected tensors: extra\.weight",
    ):
        from_pretrained(tmp_path)


def test_open_clip_layout_matches_transformers(tmp_path):
    """The same weights in open_clip's layout (fused in_proj, transposed projections) give the same model."""
    from safetensors.torch import save_file

    model = hf_clip()
    hf = model.state_dict()
    tensors = {
        "logit_scale": hf["logit_scale"],
        "visual.proj": hf["visual_projection.weight"].t().contiguous(),
        "text_projection": hf["text_projection.weight"].t().contiguous(),
    }
    renames = {
        "vision_model.embeddings.patch_embedding.weight": "visual.conv1.weight",
        "vision_model.embeddings.class_embedding": "visual.class_embedding",
        "vision_model.embeddings.position_embedding.weight": "visual.positional_embedding",
        "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
        "text_model.embeddings.position_embedding.weight": "positional_embedding",
    }
    tensors.update({new: hf[old] for old, new in renames.items()})
    for p in ("weight", "bias"):
        tensors[f"visual.ln_pre.{p}"] = hf[f"vision_model.pre_layrnorm.{p}"]
        tensors[f"visual.ln_post.{p}"] = hf[f"vision_model.post_layernorm.{p}"]
        tensors[f"ln_final.{p}"] = hf[f"text_model.final_layer_norm.{p}"]
        for tower, prefix in (("vision_model", "visual.transformer"), ("text_model", "transformer")):
            for i in range(2):
                src, dst = f"{tower}.encoder.layers.{i}", f"{prefix}.resblocks.{i}"
                tensors[f"{dst}.attn.in_proj_{p}"] = torch.cat([hf[f"{src}.self_attn.{n}_proj.{p}"] for n in "qkv"])
                for a, b in (
                    ("self_attn.out_proj", "attn.out_proj"),
                    ("layer_norm1", "ln_1"),
                    ("layer_norm2", "ln_2"),
                    ("mlp.fc1", "mlp.c_fc"),
                    ("mlp.fc2", "mlp.c_proj"),
                ):
                    tensors[f"{dst}.{b}.{p}"] = hf[f"{src}.{a}.{p}"]
    save_file({k: v.contiguous() for k, v in tensors.items()}, tmp_path / "open_clip_model.safetensors")
    model_cfg = {
        "embed_dim": 24,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 8, "mlp_ratio": 2.0},
        "text_cfg": {"context_length": 16, "vocab_size": 99, "width": 32, "heads": 4, "layers": 2, "mlp_ratio": 1.5},
    }
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg}))
    ours = from_pretrained(tmp_path)
    pixels, ids = torch.randn(2, 3, 32, 32), torch.tensor([[3, 7, 9, 98, 0], [3, 98, 0, 0, 0]])
    with torch.no_grad():
        expected = model(pixel_values=pixels, input_ids=ids)
        torch.testing.assert_close(ours.encode_image(pixels), expected.image_embeds, atol=1e-4, rtol=0)
        torch.testing.assert_close(ours.encode_text(ids), expected.text_embeds, atol=1e-4, rtol=0)
    assert ours.image_processor.size == (32, 32)
