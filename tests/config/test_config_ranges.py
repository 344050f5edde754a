"""Config numbers are range-checked as well as type-checked: a NaN epsilon or a negative size is a
ConfigError naming the field, when the config is read, not NaN embeddings later."""

from __future__ import annotations

import json
import math

import pytest

import vlmkit
from testkit import tiny_model
from vlmkit.checkpoints import save_pretrained
from vlmkit.config import ConSEConfig, DecoderConfig, DualEncoderConfig, EfficientNetConfig, VlmConfig
from vlmkit.config.presets import tiny_decoder_config, tiny_vlm_config
from vlmkit.errors import ConfigError


@pytest.mark.parametrize("value", [float("nan"), -1, 0, float("inf")])
def test_a_bad_norm_eps_in_a_saved_model_is_named(tmp_path, value):
    save_pretrained(tiny_model(), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["vision"]["norm_eps"] = value
    (tmp_path / "config.json").write_text(json.dumps(config))  # json writes NaN and Infinity
    with pytest.raises(ConfigError, match=r"config\.json\.vision\.norm_eps: must be a positive finite number"):
        vlmkit.load(tmp_path)


def _dual(**changes):
    data = tiny_model().config.to_dict()
    for path, value in changes.items():
        *parents, name = path.split("__")
        target = data
        for parent in parents:
            target = target[parent]
        target[name] = value
    return DualEncoderConfig.from_dict(data, "cfg")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("text__norm_eps", math.nan, r"cfg\.text\.norm_eps: must be a positive finite number, got nan"),
        ("vision__channels", 0, r"cfg\.vision\.channels: must be positive, got 0"),
        ("text__pad_token_id", -1, r"cfg\.text\.pad_token_id: must be >= 0, got -1"),
        ("text__eos_token_id", -3, r"cfg\.text\.eos_token_id: must be >= 0"),
        ("logit_scale_init", math.inf, r"cfg\.logit_scale_init: must be a finite number, got inf"),
        ("logit_bias_init", math.nan, r"cfg\.logit_bias_init: must be a finite number"),
        ("vision__mlp_dim", -5, r"cfg\.vision\.mlp_dim: must be positive"),
    ],
)
def test_dual_encoder_fields_are_range_checked(field, value, message):
    with pytest.raises(ConfigError, match=message):
        _dual(**{field: value})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"norm_eps": -1e-5}, r"dec\.norm_eps: must be a positive finite number, got -1e-05"),
        ({"rope_theta": math.nan}, r"dec\.rope_theta: must be a positive finite number"),
        ({"rope_factor": math.inf}, r"dec\.rope_factor: must be a positive finite number"),
        ({"head_dim": 0}, r"dec\.head_dim: must be positive, got 0"),
        ({"rope_original_max_positions": 0}, r"dec\.rope_original_max_positions: must be positive"),
        (
            {"rope_scaling": "llama3", "rope_low_freq_factor": 4.0, "rope_high_freq_factor": 4.0},
            r"dec\.rope_high_freq_factor: must exceed rope_low_freq_factor",
        ),
        ({"layers": 100_000}, r"dec\.layers: 100000 blocks; vlmkit builds at most 4096"),
        ({"width": 10**8, "heads": 2, "kv_heads": 2}, r"dec: vocab_size=.*width=100000000.* parameters"),
    ],
)
def test_decoder_fields_are_range_checked(changes, message):
    data = {**tiny_decoder_config().to_dict(), **changes}
    with pytest.raises(ConfigError, match=message):
        DecoderConfig.from_dict(data, "dec")


def test_cnn_and_conse_fields_are_range_checked():
    with pytest.raises(ConfigError, match=r"cnn\.bn_eps: must be a positive finite number, got nan"):
        EfficientNetConfig.from_dict({"bn_eps": math.nan}, "cnn")
    with pytest.raises(ConfigError, match=r"cnn: .*largest stage channels=100000000000.* parameters"):
        EfficientNetConfig.from_dict({"stages": [[3, 1, 6, 10**11, 1]]}, "cnn")
    with pytest.raises(ConfigError, match=r"conse\.logit_scale_init: must be a finite number"):
        ConSEConfig.from_dict({"logit_scale_init": math.nan}, "conse")


def test_a_vlm_of_absurd_size_is_refused():
    data = tiny_vlm_config().to_dict()
    data["decoder"].update(width=10**7, heads=1, kv_heads=1, mlp_dim=1, vocab_size=data["image_token_id"] + 1)
    with pytest.raises(ConfigError, match=r"vlm(\.decoder)?: .* parameters"):
        VlmConfig.from_dict(data, "vlm")


def test_the_presets_and_real_shapes_pass():
    from vlmkit.config import clip_config, siglip_config, smollm2_135m_config

    for config in (clip_config(), siglip_config(), smollm2_135m_config(), tiny_vlm_config(), EfficientNetConfig()):
        assert config.checked("preset") == config
