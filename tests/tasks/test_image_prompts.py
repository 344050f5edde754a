"""``tasks.image_prompts.joined_inputs``: images processed one by one (as training does, each conversation laid out
for its own image) and then joined are what the processor gives for the same images at once, for each family whose
processor lays images out one by one: split (SmolVLM), tiled (LLaVA-NeXT), at their own resolution (Qwen2-VL)."""

from __future__ import annotations

import pytest
import torch

import vlmkit
from idefics3_kit import hf_idefics3
from idefics3_kit import save_tiny_processor as save_idefics3_processor
from llava_next_kit import hf_llava_next
from llava_next_kit import save_tiny_processor as save_llava_next_processor
from qwen2_vl_kit import hf_qwen2_vl
from qwen2_vl_kit import save_tiny_processor as save_qwen2_vl_processor
from testkit import noise_image
from vlmkit.tasks.image_prompts import encode_images, image_inputs, joined_inputs

FAMILIES = {
    "smolvlm": (lambda: hf_idefics3("smolvlm"), lambda d: save_idefics3_processor(d, "smolvlm")),
    "llava_next": (hf_llava_next, save_llava_next_processor),
    "qwen2_vl": (hf_qwen2_vl, save_qwen2_vl_processor),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_images_joined_one_by_one_are_the_processors_batch(family, tmp_path):
    build, save_processor = FAMILIES[family]
    torch.manual_seed(0)
    build().save_pretrained(tmp_path)
    save_processor(tmp_path)
    model = vlmkit.load(tmp_path)
    images = [noise_image(90, 40), noise_image(32, 32), noise_image(33, 61)]
    together = image_inputs(model, images)
    joined = joined_inputs([image_inputs(model, [image]) for image in images])
    assert sorted(joined) == sorted(together)
    for name, value in together.items():
        assert joined[name].shape == value.shape, name
        torch.testing.assert_close(joined[name], value, atol=0, rtol=0)
    sizes = {image_inputs(model, [image])["pixel_values"].shape for image in images}
    assert len(sizes) > 1  # the images do differ in what they become, so joining had something to do
    # and the joined batch encodes to every image's tokens, one after the other
    torch.testing.assert_close(
        encode_images(model, joined), torch.cat([encode_images(model, image_inputs(model, [i])) for i in images])
    )
