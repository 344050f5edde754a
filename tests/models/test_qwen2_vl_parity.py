"""vlmkit loads transformers' Qwen2-VL and Qwen2.5-VL as-is and matches them.

Tiny random models of our own shape (``qwen2_vl_kit``: 4 px patches merged 2x2, a GQA Qwen2 decoder with M-RoPE
sections 2, 3, 3; Qwen2.5-VL with RMSNorm, SwiGLU and 16 px windows outside block 1) are saved by transformers and
loaded by ``vlmkit.load``, in both key layouts (what transformers writes: ``visual.*`` + ``model.*``; its
in-memory one: ``model.visual.*`` + ``model.language_model.*``). ``model(**processor_outputs)`` gives the same
logits (fp32, 1e-4) on images of several sizes, a left-padded batch and a video; greedy generations are the same
tokens; the M-RoPE positions and the window layout are transformers' own.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import vlmkit
from qwen2_vl_kit import (
    IMAGE,
    MERGE,
    PATCH,
    VIDEO,
    VISION_END,
    VISION_START,
    hf_qwen2_5_vl,
    hf_qwen2_vl,
    save_tiny_processor,
)
from vlmkit.errors import CheckpointError, InputError
from vlmkit.models import Qwen2VLModel
from vlmkit.models.generation import GenerationConfig
from vlmkit.models.mrope import mrope_positions, token_types
from vlmkit.models.qwen_vision import window_order

TOL = 1e-4
PROMPT = "<|im_start|>user\n{}what is this ?<|im_end|>\n<|im_start|>assistant\n"
ONE_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"


def _images(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in sizes]


@pytest.fixture(
    scope="module",
    params=[("qwen2_vl", "saved"), ("qwen2_vl", "in_memory"), ("qwen2_5_vl", "saved"), ("qwen2_5_vl", "in_memory")],
    ids=lambda p: "-".join(p),
)
def setup(request, tmp_path_factory):
    family, layout = request.param
    torch.manual_seed(0)
    hf = hf_qwen2_vl() if family == "qwen2_vl" else hf_qwen2_5_vl()
    directory = tmp_path_factory.mktemp(f"{family}_{layout}")
    hf.save_pretrained(directory)
    processor = save_tiny_processor(directory)
    if layout == "in_memory":
        tensors = {key: value.contiguous().clone() for key, value in hf.state_dict().items()}
        assert "model.visual.patch_embed.proj.weight" in tensors and "model.language_model.norm.weight" in tensors
        save_file(tensors, directory / "model.safetensors")
    else:
        with open(directory / "config.json") as file:
            assert json.load(file)["model_type"] == family
    ours = vlmkit.load(directory)
    assert isinstance(ours, Qwen2VLModel)
    return family, hf, processor, ours


def test_config_maps(setup):
    family, _, _, ours = setup
    config = ours.config
    assert config.mrope_section == (2, 3, 3) and config.image_token_id == IMAGE and config.video_token_id == VIDEO
    assert (config.vision_start_token_id, config.vision_end_token_id) == (VISION_START, VISION_END)
    assert config.decoder.qkv_bias and not config.decoder.out_bias and config.decoder.kv_heads == 2
    assert config.vision.patch_size == PATCH and config.vision.merge_size == MERGE
    if family == "qwen2_5_vl":
        assert (config.vision.norm, config.vision.mlp, config.vision.window_size) == ("rms", "gated", 16)
        assert config.vision.full_attention_blocks == (1,) and config.tokens_per_second == 2
    else:
        assert (config.vision.norm, config.vision.mlp, config.vision.window_size) == ("layer", "plain", 0)
    assert ours.image_processor.patch_size == PATCH


@pytest.mark.parametrize(
    "sizes", [[(40, 70)], [(33, 20), (56, 48)], [(32, 40)] * 3, [(16, 200)]], ids=["one", "two", "same_size", "wide"]
)
def test_logits_match(setup, sizes):
    _, hf, processor, ours = setup
    text = PROMPT.format(ONE_IMAGE * len(sizes))
    inputs = processor(text=[text], images=_images(sizes), return_tensors="pt")
    with torch.no_grad():
        expected = hf(**inputs).logits
        got = ours(**inputs).logits
    torch.testing.assert_close(got, expected, atol=TOL, rtol=0)
    # The same from vlmkit's own processing of the same images.
    mine = ours.image_processor(_images(sizes))
    with torch.no_grad():
        again = ours(inputs["input_ids"], pixel_values=mine["pixel_values"], image_grid_thw=mine["image_grid_thw"])
    torch.testing.assert_close(again.logits, expected, atol=TOL, rtol=0)


def test_left_padded_batch_matches(setup):
    _, hf, processor, ours = setup
    texts = [PROMPT.format(ONE_IMAGE), PROMPT.format(ONE_IMAGE * 2).replace("what is", "describe it and what is")]
    inputs = processor(text=texts, images=_images([(24, 40), (40, 24), (32, 32)]), padding=True, return_tensors="pt")
    assert not bool(inputs["attention_mask"].all())
    with torch.no_grad():
        expected = hf(**inputs).logits
        got = ours(**inputs).logits
    real = inputs["attention_mask"].bool()
    torch.testing.assert_close(got[real], expected[real], atol=TOL, rtol=0)


def test_greedy_generation_matches(setup):
    _, hf, processor, ours = setup
    texts = [PROMPT.format(ONE_IMAGE), PROMPT.format(ONE_IMAGE * 2)]
    images = _images([(40, 56), (16, 40), (48, 24)], seed=3)
    inputs = processor(text=texts, images=images, padding=True, return_tensors="pt")
    length = inputs["input_ids"].shape[1]
    with torch.no_grad():
        expected = hf.generate(**inputs, max_new_tokens=10, do_sample=False, eos_token_id=None, pad_token_id=0)
    prompts = [
        row[mask.bool()].tolist() for row, mask in zip(inputs["input_ids"], inputs["attention_mask"], strict=True)
    ]
    got = ours.generate(
        prompts,
        GenerationConfig(max_new_tokens=10, eos_token_ids=(999,)),
        pixel_values=inputs["pixel_values"],
        image_grid_thw=inputs["image_grid_thw"],
    )
    assert got == expected[:, length:].tolist()
    single = ours.generate(
        prompts[:1],
        GenerationConfig(max_new_tokens=10, eos_token_ids=(999,)),
        pixel_values=inputs["pixel_values"][: int(inputs["image_grid_thw"][0].prod())],
        image_grid_thw=inputs["image_grid_thw"][:1],
    )
    assert single == got[:1]


def _video_inputs(processor, ours, frames: int, seconds: float | None):
    rng = np.random.default_rng(frames)
    clip = rng.integers(0, 256, (frames, 24, 32, 3), dtype=np.uint8)
    videos = ours.image_processor.videos([clip])  # the image bounds, as transformers' fallback gives videos
    text = PROMPT.format("<|vision_start|><|video_pad|><|vision_end|>" + ONE_IMAGE)
    images = ours.image_processor(_images([(24, 24)]))
    ids = ours.image_processor.expand(
        processor.tokenizer(text)["input_ids"], IMAGE, images["image_grid_thw"], VIDEO, videos["video_grid_thw"]
    )
    inputs = {"input_ids": torch.tensor([ids]), **images, **videos}
    if seconds is not None:
        inputs["second_per_grid_ts"] = torch.tensor([seconds])
    return inputs


@pytest.mark.parametrize("frames", [3, 4])
def test_video_matches(setup, frames):
    family, hf, processor, ours = setup
    seconds = 1.5 if family == "qwen2_5_vl" else None
    inputs = _video_inputs(processor, ours, frames, seconds)
    assert inputs["video_grid_thw"].tolist() == [[2, 6, 8]]
    hf_inputs = {**inputs, "mm_token_type_ids": token_types(inputs["input_ids"], IMAGE, VIDEO)}
    with torch.no_grad():
        expected = hf(**hf_inputs).logits
        got = ours(**inputs).logits
    torch.testing.assert_close(got, expected, atol=TOL, rtol=0)
    with torch.no_grad():
        reference = hf.generate(**hf_inputs, max_new_tokens=6, do_sample=False, eos_token_id=None, pad_token_id=0)
    options = {key: value for key, value in inputs.items() if key != "input_ids"}
    mine = ours.generate(
        [inputs["input_ids"][0].tolist()], GenerationConfig(max_new_tokens=6, eos_token_ids=(999,)), **options
    )
    assert mine == reference[:, inputs["input_ids"].shape[1] :].tolist()


def test_positions_are_transformers_rope_index(setup):
    family, hf, processor, ours = setup
    inputs = _video_inputs(processor, ours, 4, 0.5 if family == "qwen2_5_vl" else None)
    ids = torch.cat([torch.zeros(1, 3, dtype=torch.long), inputs["input_ids"]], dim=1)
    mask = torch.cat([torch.zeros(1, 3, dtype=torch.long), torch.ones_like(inputs["input_ids"])], dim=1)
    extra = {"second_per_grid_ts": inputs["second_per_grid_ts"]} if family == "qwen2_5_vl" else {}
    expected, deltas = hf.model.get_rope_index(
        ids,
        token_types(ids, IMAGE, VIDEO),
        image_grid_thw=inputs["image_grid_thw"],
        video_grid_thw=inputs["video_grid_thw"],
        attention_mask=mask,
        **extra,
    )
    got, got_deltas = ours.positions(ids, mask, inputs["image_grid_thw"], inputs["video_grid_thw"], **extra)
    assert got.tolist() == expected.tolist()
    assert got_deltas.tolist() == deltas[:, 0].tolist()


def test_save_and_reload_is_identical(setup, tmp_path):
    _, _, processor, ours = setup
    inputs = processor(text=[PROMPT.format(ONE_IMAGE)], images=_images([(24, 48)]), return_tensors="pt")
    vlmkit.save_pretrained(ours, tmp_path)
    again = vlmkit.load(tmp_path)
    assert again.config == ours.config and again.image_processor == ours.image_processor
    with torch.no_grad():
        torch.testing.assert_close(again(**inputs).logits, ours(**inputs).logits, atol=0, rtol=0)


def test_window_order_is_transformers_window_index():
    from transformers.vision_utils import get_vision_window_index

    grids = [(1, 12, 18), (2, 8, 8), (1, 4, 20)]
    order, windows = window_order(grids, MERGE, 16 // PATCH)
    expected, bounds = get_vision_window_index(torch.tensor(grids), MERGE, 16, PATCH)
    assert order.tolist() == expected.tolist()
    patch_windows = windows.repeat_interleave(MERGE**2)
    starts = torch.cat([torch.tensor([True]), patch_windows[1:] != patch_windows[:-1]]).nonzero()[:, 0]
    assert [*starts.tolist(), len(patch_windows)] == bounds.tolist()


def test_bad_inputs_are_one_line(setup, tmp_path):
    _, _, processor, ours = setup
    inputs = processor(text=[PROMPT.format(ONE_IMAGE)], images=_images([(24, 48)]), return_tensors="pt")
    with pytest.raises(InputError, match="image pad tokens"):
        ids = inputs["input_ids"][0].tolist()
        ids.remove(IMAGE)  # the image's run one token short
        fewer = torch.tensor([ids])
        ours(fewer, pixel_values=inputs["pixel_values"], image_grid_thw=inputs["image_grid_thw"])
    with pytest.raises(InputError, match="image_grid_thw"):
        ours(inputs["input_ids"], pixel_values=inputs["pixel_values"])
    with pytest.raises(InputError, match="do not fit grid_thw"):
        ours(inputs["input_ids"], pixel_values=inputs["pixel_values"][:-4], image_grid_thw=inputs["image_grid_thw"])
    with pytest.raises(InputError, match="multiples of 2"):
        ours.vision(inputs["pixel_values"], torch.tensor([[1, 3, 24]]))
    with pytest.raises(InputError, match="does not match its grid"):
        mrope_positions(torch.tensor([[0, 1, 1, 0]]), [(1, 4, 4)], [], MERGE)


def test_unsupported_fields_are_named(tmp_path):
    hf = hf_qwen2_vl()
    hf.save_pretrained(tmp_path)
    with open(tmp_path / "config.json") as file:
        raw = json.load(file)
    raw["vision_config"]["use_fancy_pooling"] = True
    (tmp_path / "config.json").write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match="'use_fancy_pooling'"):
        vlmkit.load(tmp_path)
    raw["vision_config"].pop("use_fancy_pooling")
    raw["text_config"]["rope_parameters"] = {"rope_type": "yarn", "factor": 2.0, "mrope_section": [2, 3, 3]}
    (tmp_path / "config.json").write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match="'yarn'"):
        vlmkit.load(tmp_path)


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
def test_flat_hub_config_loads(tmp_path, family):
    """The hub's older config.json: text fields at the top level, ``rope_scaling`` of type "mrope", and the vision
    sizes repeated as ``in_chans`` / ``spatial_patch_size``."""
    torch.manual_seed(0)
    hf = hf_qwen2_vl() if family == "qwen2_vl" else hf_qwen2_5_vl()
    hf.save_pretrained(tmp_path)
    processor = save_tiny_processor(tmp_path)
    raw = json.loads((tmp_path / "config.json").read_text())
    text = raw.pop("text_config")
    rope = text.pop("rope_parameters")
    text.update(rope_theta=rope["rope_theta"], rope_scaling={"type": "mrope", "mrope_section": rope["mrope_section"]})
    text.pop("model_type")
    raw["vision_config"].update(in_chans=3, spatial_patch_size=PATCH, model_type=family)
    (tmp_path / "config.json").write_text(json.dumps({**raw, **text}))
    ours = vlmkit.load(tmp_path)
    inputs = processor(text=[PROMPT.format(ONE_IMAGE)], images=_images([(24, 40)]), return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(ours(**inputs).logits, hf(**inputs).logits, atol=TOL, rtol=0)
    raw["vision_config"]["spatial_patch_size"] = PATCH * 2
    (tmp_path / "config.json").write_text(json.dumps({**raw, **text}))
    with pytest.raises(CheckpointError, match="spatial_patch_size 8 differs from patch_size 4"):
        vlmkit.load(tmp_path)
