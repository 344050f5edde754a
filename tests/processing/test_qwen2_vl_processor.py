"""vlmkit's Qwen2-VL processing equals transformers' (5.24) on the same inputs.

Images against ``Qwen2VLImageProcessorPil`` and the processor's token expansion: the same ``image_grid_thw``,
``pixel_values`` within 1e-5 and the same expanded ``input_ids``. Videos: transformers' video processor needs
torchvision, which this environment lacks, so its own ``patchify`` and ``smart_resize`` (imported with a stand-in
for the torchvision module they do not call) are compared with vlmkit's on frames already at their target size.
"""

from __future__ import annotations

import importlib
import sys
import types

import numpy as np
import pytest
import torch
import transformers
from PIL import Image

from qwen2_vl_kit import IMAGE, MAX_PIXELS, MERGE, MIN_PIXELS, PATCH, VIDEO, save_tiny_processor
from vlmkit.errors import ConfigError, InputError
from vlmkit.processing.anyres import image_processor_from_dict, image_processor_from_hf
from vlmkit.processing.qwen2_vl import QwenImageProcessor, patchify, smart_resize

SIZES = [(40, 70), (33, 20), (8, 8), (100, 30), (47, 47), (16, 200)]


def _images(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in sizes]


@pytest.fixture(scope="module")
def processors(tmp_path_factory):
    directory = tmp_path_factory.mktemp("qwen2_vl_processor")
    reference = save_tiny_processor(directory)
    ours = image_processor_from_hf(reference.image_processor.to_dict())
    assert isinstance(ours, QwenImageProcessor)
    return reference, ours


def test_reads_the_saved_config(processors):
    _, ours = processors
    assert (ours.min_pixels, ours.max_pixels, ours.patch_size, ours.merge_size) == (
        MIN_PIXELS,
        MAX_PIXELS,
        PATCH,
        MERGE,
    )
    assert image_processor_from_dict(ours.to_dict()) == ours
    # Without a video processor config of its own, transformers' video processor reads this file too.
    assert (ours.video_min_pixels, ours.video_max_pixels) == (MIN_PIXELS, MAX_PIXELS)


@pytest.mark.parametrize("size", SIZES)
def test_images_match(processors, size):
    reference, ours = processors
    images = _images([size, (size[1], size[0])])
    text = "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>what is this ?"
    text += "<|vision_start|><|image_pad|><|vision_end|><|im_end|>\n<|im_start|>assistant\n"
    expected = reference(text=[text], images=images, return_tensors="pt")
    got = ours(images)
    assert got["image_grid_thw"].tolist() == expected["image_grid_thw"].tolist()
    assert got["pixel_values"].shape == expected["pixel_values"].shape
    torch.testing.assert_close(got["pixel_values"], expected["pixel_values"], atol=1e-5, rtol=0)
    ids = reference.tokenizer(text)["input_ids"]
    assert ours.expand(ids, IMAGE, got["image_grid_thw"]) == expected["input_ids"][0].tolist()
    assert expected["mm_token_type_ids"][0].tolist() == [int(i == IMAGE) for i in expected["input_ids"][0].tolist()]


def test_smart_resize_matches_transformers():
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as reference

    rng = np.random.default_rng(1)
    for height, width in rng.integers(1, 3000, (300, 2)).tolist():
        if max(height, width) / min(height, width) > 200:
            with pytest.raises(InputError, match="aspect ratio"):
                smart_resize(height, width, 28, 56 * 56, 28 * 28 * 1280)
            continue
        assert smart_resize(height, width, 28, 56 * 56, 28 * 28 * 1280) == reference(height, width)


@pytest.fixture(scope="module")
def video_module():
    """transformers' video processing module, imported with empty stand-ins for torchvision (only its resize
    uses it); the stand-ins are removed again so nothing else sees them."""
    import transformers.video_processing_utils  # noqa: F401  (availability checks run before the stand-ins)

    names = [
        "torchvision",
        "torchvision.transforms",
        "torchvision.transforms.v2",
        "torchvision.transforms.v2.functional",
    ]
    added = [name for name in names if name not in sys.modules]
    sys.modules.update({name: types.ModuleType(name) for name in added})
    try:
        return importlib.import_module("transformers.models.qwen2_vl.video_processing_qwen2_vl")
    finally:
        for name in added:
            sys.modules.pop(name, None)


@pytest.mark.parametrize("frames", [1, 2, 3, 4, 5])
def test_video_patches_match(video_module, frames):
    ours = QwenImageProcessor(video_min_pixels=MIN_PIXELS, video_max_pixels=MAX_PIXELS, patch_size=PATCH)
    height, width = smart_resize(24, 40, PATCH * MERGE, MIN_PIXELS, MAX_PIXELS)  # already a target size
    rng = np.random.default_rng(frames)
    clip = rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8)
    got = ours.videos([clip])
    values = torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 255
    values = (values - torch.tensor(ours.mean).view(1, 3, 1, 1)) / torch.tensor(ours.std).view(1, 3, 1, 1)
    expected, t, h, w = video_module.Qwen2VLVideoProcessor.patchify(None, values[None], PATCH, MERGE, 2)
    assert got["video_grid_thw"].tolist() == [[t, h, w]] == [list(ours.grid(height, width, frames, video=True))]
    torch.testing.assert_close(got["pixel_values_videos"], expected[0], atol=1e-5, rtol=0)
    counts = video_module.Qwen2VLVideoProcessor.get_num_of_video_patches(
        ours, frames, height, width, {"size": {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}}
    )
    assert counts == got["pixel_values_videos"].shape[0]
    assert ours.expand([VIDEO], IMAGE, None, VIDEO, got["video_grid_thw"]) == [VIDEO] * (t * h * w // MERGE**2)


def test_a_picture_is_a_one_frame_video():
    frame = torch.rand(1, 3, 16, 24)
    image, grid = patchify(frame, PATCH, MERGE, 2)
    video, _ = patchify(frame.expand(2, -1, -1, -1), PATCH, MERGE, 2)
    assert grid == (1, 4, 6)
    torch.testing.assert_close(image, video, atol=0, rtol=0)


def test_bad_settings_are_named():
    with pytest.raises(ConfigError, match="'do_pad'"):
        QwenImageProcessor.from_hf_config({"merge_size": 2, "temporal_patch_size": 2, "do_pad": True})
    with pytest.raises(ConfigError, match="'resample'"):
        QwenImageProcessor.from_hf_config({"merge_size": 2, "temporal_patch_size": 2, "resample": 2})
    with pytest.raises(ConfigError, match="min_pixels"):
        QwenImageProcessor(min_pixels=100, max_pixels=10)
    with pytest.raises(InputError, match="same size"):
        QwenImageProcessor(patch_size=PATCH).videos([_images([(16, 16), (24, 16)])])
    with pytest.raises(InputError, match="2 image tokens but 1"):
        QwenImageProcessor().expand([IMAGE, 1, IMAGE], IMAGE, torch.tensor([[1, 4, 4]]))


def test_transformers_image_processor_is_the_reference():
    assert transformers.Qwen2VLImageProcessorPil().merge_size == QwenImageProcessor().merge_size == 2
