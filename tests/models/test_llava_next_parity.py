"""vlmkit loads transformers' LlavaNextForConditionalGeneration as-is and matches it, processor included.

A tiny random LLaVA-NeXT of our own shape (a 32 px CLIP tower of 8 px patches, tiled at 32x64, 64x32 or
64x64; a GQA Llama) and its LlavaNextProcessor are saved by transformers and loaded by ``vlmkit.load``.
On images of several aspect ratios (so several tile grids, and padding cropped on either axis):
vlmkit's processing gives the same expanded ``input_ids``, ``pixel_values`` and ``image_sizes``;
``model(**processor_outputs)`` gives the same logits (fp32, 1e-4); greedy generations are identical;
in both key layouts (the hub's ``language_model.model.*`` + ``image_newline``, and transformers 5's
in-memory ``model.*`` + ``lm_head``), at two ``vision_feature_layer`` values.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import vlmkit
from llava_next_kit import EOS, IMAGE, hf_llava_next, save_tiny_processor
from vlmkit.errors import CheckpointError, ConfigError
from vlmkit.models import VisionLanguageModel
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.anyres import expand_image_tokens

TOL = 1e-4
# (height, width): wide, tall, square, very wide (a single row of tiles), odd sizes.
SIZES = [(40, 90), (90, 40), (50, 50), (17, 200), (61, 33)]
TEXTS = ["USER: <image>\nwhat is this ? ASSISTANT:", "USER: <image>\ndescribe it ASSISTANT:"]


def _images(sizes=SIZES) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in sizes]


@pytest.fixture(scope="module", params=[("saved", -2), ("in_memory", -1)], ids=["saved_layer-2", "in_memory_layer-1"])
def setup(request, tmp_path_factory):
    layout, layer = request.param
    torch.manual_seed(0)
    hf = hf_llava_next(layer=layer)
    directory = tmp_path_factory.mktemp(layout)
    hf.save_pretrained(directory)
    processor = save_tiny_processor(directory)
    if layout == "in_memory":
        tensors = {key: value.contiguous().clone() for key, value in hf.state_dict().items()}
        assert "model.image_newline" in tensors and "lm_head.weight" in tensors
        save_file(tensors, directory / "model.safetensors")
    else:
        with open(directory / "config.json") as file:
            assert json.load(file)["model_type"] == "llava_next"
    ours = vlmkit.load(directory)
    assert isinstance(ours, VisionLanguageModel)
    return hf, processor, ours


def test_config_maps(setup):
    hf, _, ours = setup
    assert ours.config.image_grid_pinpoints == ((32, 64), (64, 32), (64, 64))
    assert ours.config.projector.vision_layer == hf.config.vision_feature_layer
    assert ours.config.decoder.kv_heads == 2 and ours.config.decoder.heads == 4
    torch.testing.assert_close(ours.image_newline, hf.model.image_newline, atol=0, rtol=0)


@pytest.mark.parametrize("size", SIZES)
def test_processor_outputs_match(setup, size):
    _, processor, ours = setup
    images = _images([size, (size[1], size[0])])
    text = "USER: <image> <image>\ndescribe it ASSISTANT:"
    expected = processor(text=[text], images=images, return_tensors="pt")
    got = ours.image_processor(images)
    assert got["image_sizes"].tolist() == expected["image_sizes"].tolist() == [list(size), [size[1], size[0]]]
    assert got["pixel_values"].shape == expected["pixel_values"].shape
    torch.testing.assert_close(got["pixel_values"], expected["pixel_values"], atol=1e-5, rtol=0)
    counts = [ours.image_tokens(tuple(s)) for s in got["image_sizes"].tolist()]
    ids = expand_image_tokens(ours.tokenizer.tokenizer.encode(text).ids, IMAGE, counts)
    assert ids == expected["input_ids"][0].tolist()
    assert ids.count(IMAGE) == sum(counts)


def test_logits_match_on_processor_outputs(setup):
    hf, processor, ours = setup
    inputs = processor(text=TEXTS, images=_images(SIZES[:2]), return_tensors="pt", padding=True)
    real = inputs["attention_mask"].bool()
    assert not real.all()  # the two images take different token counts, so one row is padded
    with torch.no_grad():
        expected = hf(**inputs).logits
        got = ours(**inputs).logits
    torch.testing.assert_close(got[real], expected[real], atol=TOL, rtol=0)
    # The crops may also come concatenated (crops, 3, H, W), without the batch's zero padding.
    crops = [1 + 2, 1 + 2]  # both images tile at 32x64 or 64x32
    flat = torch.cat([views[:count] for views, count in zip(inputs["pixel_values"], crops, strict=True)])
    with torch.no_grad():
        again = ours(
            inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            pixel_values=flat,
            image_sizes=inputs["image_sizes"],
        ).logits
    torch.testing.assert_close(again, got, atol=0, rtol=0)


@pytest.mark.parametrize("index", [0, 3])
def test_greedy_generation_matches(setup, index):
    hf, processor, ours = setup
    inputs = processor(text=TEXTS[:1], images=_images(SIZES[index : index + 1]), return_tensors="pt")
    with torch.no_grad():
        out = hf.generate(**inputs, max_new_tokens=12, do_sample=False)
    expected = out[0, inputs["input_ids"].shape[1] :].tolist()
    expected = expected[: expected.index(EOS)] if EOS in expected else expected
    got = ours.generate(
        [inputs["input_ids"][0].tolist()],
        inputs["pixel_values"],
        GenerationConfig(max_new_tokens=12),
        image_sizes=inputs["image_sizes"],
    )[0]
    assert got == expected
    assert len(set(got)) > 1  # a generation that repeats one token would match by accident


def test_save_load_round_trip(setup, tmp_path):
    _, processor, ours = setup
    vlmkit.save_pretrained(ours, tmp_path)
    again = vlmkit.load(tmp_path)
    assert again.config == ours.config and again.image_processor == ours.image_processor
    inputs = processor(text=TEXTS[:1], images=_images(SIZES[:1]), return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(again(**inputs).logits, ours(**inputs).logits, atol=0, rtol=0)


def test_siglip_tower_read_in_full(tmp_path):
    """The "full" strategy with a tower that has no class token (SigLIP's), the pairing transformers can pack."""
    torch.manual_seed(1)
    hf = hf_llava_next(strategy="full", layer=-1, tower="siglip")
    hf.save_pretrained(tmp_path)
    processor = save_tiny_processor(tmp_path, strategy="full")
    ours = vlmkit.load(tmp_path)
    assert not ours.config.vision.class_token and ours.config.tokens_per_image == 16
    inputs = processor(text=TEXTS, images=_images(SIZES[2:4]), return_tensors="pt", padding=True)
    counts = [ours.image_tokens(tuple(s)) for s in inputs["image_sizes"].tolist()]
    assert counts == (inputs["input_ids"] == IMAGE).sum(1).tolist()
    real = inputs["attention_mask"].bool()
    with torch.no_grad():
        torch.testing.assert_close(ours(**inputs).logits[real], hf(**inputs).logits[real], atol=TOL, rtol=0)


@pytest.mark.parametrize(("tie", "text_tie"), [(False, True), (True, False)])
def test_head_tied_as_transformers_ties_it(tmp_path, tie, text_tie):
    """transformers 5 follows the top-level ``tie_word_embeddings`` for LLaVA-NeXT: a tied text config under
    an untied top level keeps a separate head (LlavaConfig would tie it)."""
    torch.manual_seed(2)
    hf = hf_llava_next(tie=tie, text_tie=text_tie)
    head, embed = hf.get_output_embeddings().weight, hf.get_input_embeddings().weight
    assert (head.data_ptr() == embed.data_ptr()) == tie
    hf.save_pretrained(tmp_path)
    processor = save_tiny_processor(tmp_path)
    ours = vlmkit.load(tmp_path)
    assert ours.config.decoder.tie_embeddings == tie
    inputs = processor(text=TEXTS[:1], images=_images(SIZES[2:3]), return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(ours(**inputs).logits, hf(**inputs).logits, atol=TOL, rtol=0)


def _rewrite(directory, name: str, change) -> None:
    path = directory / name
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    hf_llava_next().save_pretrained(tmp_path)
    save_tiny_processor(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("vision_feature_layer", [-2, -1], "vision_feature_layer"),
        ("vision_feature_select_strategy", "full", "vision_feature_select_strategy 'full'"),
        ("image_grid_pinpoints", [[32, 48]], "image_grid_pinpoints"),
    ],
)
def test_unsupported_model_fields_are_named(saved, field, value, named):
    _rewrite(saved, "config.json", lambda config: config.__setitem__(field, value))
    with pytest.raises(CheckpointError, match=named):
        vlmkit.load(saved)


def test_unsupported_processor_field_is_named(saved):
    _rewrite(saved, "processor_config.json", lambda config: config["image_processor"].__setitem__("do_magic", True))
    with pytest.raises(ConfigError, match="do_magic"):
        vlmkit.load(saved)
