"""``vlmkit export --format hf`` of a Qwen2-VL / Qwen2.5-VL: transformers loads the directory with its own class.

The model is a transformers-saved tiny one loaded by vlmkit, its weights then moved (as a fine-tune would) and saved
as a vlmkit directory; the export of that directory loads in ``Qwen2VLForConditionalGeneration`` (2.5's class for
2.5) with no missing or unexpected key, gives vlmkit's logits, its processor the same pixels and prompt ids as the
original processor, and it reads back into vlmkit bit for bit.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import transformers

import vlmkit
from qwen2_vl_kit import ImageOnlyProcessor, hf_qwen2_5_vl, hf_qwen2_vl, save_tiny_processor
from testkit import noise_image, perturb
from vlmkit.checkpoints import save_pretrained
from vlmkit.checkpoints.export import export_hf
from vlmkit.cli import main
from vlmkit.errors import ConfigError

TOL = 1e-4
QUESTION = "what is this ?"


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
def test_export_loads_in_transformers_with_the_same_logits(tmp_path, capsys, family):
    torch.manual_seed(0)
    hf = hf_qwen2_vl() if family == "qwen2_vl" else hf_qwen2_5_vl()
    hf.save_pretrained(tmp_path / "hf")
    processor = save_tiny_processor(tmp_path / "hf")
    ours = perturb(vlmkit.load(tmp_path / "hf"), scale=0.02).eval()  # no longer the weights it was loaded with
    save_pretrained(ours, tmp_path / "ours")

    assert main(["export", str(tmp_path / "ours"), "--format", "hf", "--out", str(tmp_path / "export")]) == 0
    assert "wrote" in capsys.readouterr().out
    exported, info = type(hf).from_pretrained(tmp_path / "export", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "export")
    images = transformers.Qwen2VLImageProcessorPil.from_pretrained(tmp_path / "export")
    again = ImageOnlyProcessor(image_processor=images, tokenizer=tokenizer, chat_template=tokenizer.chat_template)

    pictures = [noise_image(56, 24, 1), noise_image(24, 40, 2)]
    content = [{"type": "image"}, {"type": "image"}, {"type": "text", "text": QUESTION}]
    text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    inputs = processor(text=[text], images=pictures, return_tensors="pt")
    inputs_again = again(text=[again.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                                         add_generation_prompt=True)], images=pictures,
                         return_tensors="pt")  # fmt: skip
    assert torch.equal(inputs_again["input_ids"], inputs["input_ids"])
    assert torch.allclose(inputs_again["pixel_values"], inputs["pixel_values"], atol=1e-6)
    assert torch.equal(inputs_again["image_grid_thw"], inputs["image_grid_thw"])

    expected = ours(**inputs).logits
    with torch.no_grad():
        theirs = exported(**inputs).logits
    assert (theirs - expected).abs().max() < TOL
    assert (theirs - hf(**inputs).logits).abs().max() > 1e-2  # the moved weights were exported, not the original

    back = vlmkit.load(tmp_path / "export")
    assert back.state_dict().keys() == ours.state_dict().keys()
    assert all(torch.equal(value, back.state_dict()[key]) for key, value in ours.state_dict().items())


def test_unexportable_settings_are_named(tmp_path):
    torch.manual_seed(0)
    hf_qwen2_vl().save_pretrained(tmp_path / "hf")
    save_tiny_processor(tmp_path / "hf")
    model = vlmkit.load(tmp_path / "hf")
    processor = model.image_processor
    model.image_processor = dataclasses.replace(processor, video_max_pixels=2 * processor.max_pixels)
    with pytest.raises(ConfigError, match="video pixel bounds"):
        export_hf(model, tmp_path / "out")
