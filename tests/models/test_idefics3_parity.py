"""vlmkit loads transformers' Idefics3 and SmolVLM checkpoints as-is and matches them.

A tiny random Idefics3ForConditionalGeneration (pixel shuffle 2) and SmolVLMForConditionalGeneration (pixel
shuffle 4), each with an Idefics3Processor, are saved by transformers and loaded by ``vlmkit.load``; on a
padded batch of multi-image prompts (so zero padding crops and padded rows) ``model(**processor_outputs)``
gives the same logits (fp32, 1e-4) and greedy generations are identical, one prompt and a batch. A tied
head (no ``lm_head`` in the file) loads too, also from a bare ``Idefics3Model``'s keys; ``export --format hf``
gives back a directory transformers loads with the same logits; bad configs are named in one line.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers
from PIL import Image
from safetensors.torch import save_file

import vlmkit
from idefics3_kit import EOS, IMAGE, hf_idefics3, save_tiny_processor
from vlmkit.checkpoints import idefics3
from vlmkit.checkpoints.export import export_hf
from vlmkit.errors import CheckpointError, ConfigError, InputError
from vlmkit.models import VisionLanguageModel
from vlmkit.models.generation import GenerationConfig

TOL = 1e-4
SIZES = [(40, 90), (20, 20), (17, 200), (61, 33)]
TEXTS = [
    "User:<image>what is this ?<end_of_utterance>\nAssistant:",
    "User:<image> and <image> describe it<end_of_utterance>\nAssistant:",
]


def _images(sizes=SIZES) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in sizes]


@pytest.fixture(scope="module", params=["idefics3", "smolvlm"])
def setup(request, tmp_path_factory):
    torch.manual_seed(0)
    hf = hf_idefics3(request.param)
    directory = tmp_path_factory.mktemp(request.param)
    hf.save_pretrained(directory)
    processor = save_tiny_processor(directory, request.param)
    with open(directory / "config.json") as file:
        assert json.load(file)["model_type"] == request.param
    ours = vlmkit.load(directory)
    assert isinstance(ours, VisionLanguageModel)
    return hf, processor, ours


def _batch(processor):
    images = _images(SIZES[:3])
    return processor(text=TEXTS, images=[images[:1], images[1:]], return_tensors="pt", padding=True)


def test_config_maps(setup):
    hf, _, ours = setup
    config = ours.config
    assert config.image_splitting and config.projector.kind == "linear" and not config.projector.bias
    assert config.projector.pixel_shuffle == hf.config.scale_factor and config.tokens_per_image == 4
    assert config.projector.vision_layer == -1 and config.projector.vision_norm
    assert not config.vision.class_token and config.decoder.kv_heads == 2
    torch.testing.assert_close(
        ours.projector.fc1.weight, hf.model.connector.modality_projection.proj.weight, atol=0, rtol=0
    )


def test_logits_match_on_processor_outputs(setup):
    hf, processor, ours = setup
    inputs = _batch(processor)
    real = inputs["attention_mask"].bool()
    assert not real.all()  # the rows differ in length, so one is padded
    assert not inputs["pixel_values"][0, -1].any()  # the first row's crops are padded with zero crops
    with torch.no_grad():
        expected = hf(**inputs).logits
        got = ours(**inputs).logits
    torch.testing.assert_close(got[real], expected[real], atol=TOL, rtol=0)
    # The real crops may also come on their own (crops, 3, S, S), without the batch's padding.
    crops = inputs["pixel_values"].flatten(0, 1)[inputs["pixel_attention_mask"].flatten(0, 1).amax((1, 2)).bool()]
    with torch.no_grad():
        again = ours(inputs["input_ids"], attention_mask=inputs["attention_mask"], pixel_values=crops).logits
    torch.testing.assert_close(again, got, atol=0, rtol=0)


def _hf_greedy(hf, inputs, steps):
    with torch.no_grad():
        out = hf.generate(**inputs, max_new_tokens=steps, do_sample=False)
    rows = []
    for row in out[:, inputs["input_ids"].shape[1] :].tolist():
        rows.append(row[: row.index(EOS)] if EOS in row else row)
    return rows


def test_greedy_generation_matches(setup):
    hf, processor, ours = setup
    inputs = processor(text=TEXTS[:1], images=[_images(SIZES[2:3])], return_tensors="pt")
    expected = _hf_greedy(hf, inputs, 12)
    got = ours.generate([inputs["input_ids"][0].tolist()], inputs["pixel_values"], GenerationConfig(max_new_tokens=12))
    assert got == expected
    assert len(set(got[0])) > 1  # a generation that repeats one token would match by accident


def test_batched_greedy_generation_matches(setup):
    hf, processor, ours = setup
    inputs = _batch(processor)
    expected = _hf_greedy(hf, inputs, 8)
    prompts = [
        ids[mask.bool()].tolist() for ids, mask in zip(inputs["input_ids"], inputs["attention_mask"], strict=True)
    ]
    got = ours.generate(prompts, inputs["pixel_values"], GenerationConfig(max_new_tokens=8))
    assert got == expected


def test_save_load_round_trip(setup, tmp_path):
    _, processor, ours = setup
    vlmkit.save_pretrained(ours, tmp_path)
    again = vlmkit.load(tmp_path)
    assert again.config == ours.config and again.image_processor == ours.image_processor
    inputs = _batch(processor)
    with torch.no_grad():
        torch.testing.assert_close(again(**inputs).logits, ours(**inputs).logits, atol=0, rtol=0)


def test_export_round_trip(setup, tmp_path):
    """vlmkit's export is a directory transformers loads with Idefics3's own classes, with the same logits and
    the same processor outputs."""
    _, processor, ours = setup
    export_hf(ours, tmp_path)
    hf = transformers.Idefics3ForConditionalGeneration.from_pretrained(tmp_path).eval()
    exported = transformers.Idefics3Processor.from_pretrained(tmp_path)
    exported.tokenizer.padding_side = "left"  # the kit's; the export leaves transformers' default (right)
    inputs = _batch(processor)
    again = _batch(exported)
    assert torch.equal(again["input_ids"], inputs["input_ids"])
    torch.testing.assert_close(again["pixel_values"], inputs["pixel_values"], atol=0, rtol=0)
    with torch.no_grad():
        expected, got = hf(**again).logits, ours(**inputs).logits
    real = inputs["attention_mask"].bool()
    torch.testing.assert_close(got[real], expected[real], atol=TOL, rtol=0)


def test_crops_the_tower_cannot_read_are_refused(setup):
    _, processor, ours = setup
    inputs = _batch(processor)
    inputs["pixel_attention_mask"][1, 0, :, -4:] = 0
    with pytest.raises(InputError, match="pixel_attention_mask"):
        ours(**inputs)
    with pytest.raises(InputError, match="splits images"):
        ours.image_tokens((40, 90))
    inputs = _batch(processor)
    inputs["input_ids"][1, inputs["input_ids"][1].tolist().index(IMAGE)] = 0  # one image token short
    with pytest.raises(InputError, match="lay out each image as its processor does"):
        ours(**inputs)
    with pytest.raises(InputError, match="max_image_size must equal"):
        ours(
            **processor(
                text=TEXTS[:1], images=[_images(SIZES[:1])], return_tensors="pt", max_image_size={"longest_edge": 16}
            )
        )


def test_tied_head_and_bare_keys_load(tmp_path):
    torch.manual_seed(1)
    hf = hf_idefics3(tied=True)
    hf.save_pretrained(tmp_path)
    processor = save_tiny_processor(tmp_path)
    ours = vlmkit.load(tmp_path)
    assert ours.config.decoder.tie_embeddings
    inputs = _batch(processor)
    real = inputs["attention_mask"].bool()
    with torch.no_grad():
        expected = hf(**inputs).logits[real]
        torch.testing.assert_close(ours(**inputs).logits[real], expected, atol=TOL, rtol=0)
    # A bare Idefics3Model's keys (vision_model.*, connector.*, text_model.*, no head) load the same.
    bare = {key: value.contiguous().clone() for key, value in hf.model.state_dict().items()}
    assert "text_model.embed_tokens.weight" in bare
    save_file(bare, tmp_path / "model.safetensors")
    with torch.no_grad():
        torch.testing.assert_close(vlmkit.load(tmp_path)(**inputs).logits[real], expected, atol=TOL, rtol=0)


def test_a_sparse_smolvlm_config_takes_transformers_defaults():
    """A config.json of SmolVLM-256M's shape (512 px crops of 16 px patches, pixel shuffle 4, a SmolLM2 decoder)
    with only the fields that differ from the defaults: 64 tokens a crop, the Llama defaults filled in."""
    config = idefics3.vlm_config_from_hf(
        {
            "model_type": "smolvlm",
            "scale_factor": 4,
            "image_token_id": 49190,
            "vision_config": {"hidden_size": 768, "num_attention_heads": 12, "image_size": 512, "patch_size": 16},
            "text_config": {"hidden_size": 576, "num_hidden_layers": 30, "num_attention_heads": 9,
                            "num_key_value_heads": 3, "intermediate_size": 1536, "vocab_size": 49280},
        },
        "smolvlm",
    )  # fmt: skip
    config.validate("smolvlm")
    assert config.tokens_per_image == 64 and config.vision.grid == 32 and config.vision.layers == 12
    assert config.vision.act == "gelu_tanh" and config.decoder.norm_eps == 1e-5 and not config.decoder.tie_embeddings


def _rewrite(directory, name: str, change) -> None:
    path = directory / name
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    hf_idefics3().save_pretrained(tmp_path)
    save_tiny_processor(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("change", "error", "named"),
    [
        (lambda c: c.__setitem__("scale_factor", 3), ConfigError, "pixel_shuffle: 3"),
        (lambda c: c["text_config"].__setitem__("model_type", "gemma"), CheckpointError, "text_config.model_type"),
        (lambda c: c["vision_config"].update(image_size=152, patch_size=8), CheckpointError, "19x19 patch grid"),
    ],
)
def test_unsupported_model_fields_are_named(saved, change, error, named):
    _rewrite(saved, "config.json", change)
    with pytest.raises(error, match=named):
        vlmkit.load(saved)


def test_unsupported_processor_field_is_named(saved):
    _rewrite(saved, "processor_config.json", lambda config: config["image_processor"].__setitem__("do_magic", True))
    with pytest.raises(ConfigError, match="do_magic"):
        vlmkit.load(saved)
