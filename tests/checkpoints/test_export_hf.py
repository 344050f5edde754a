"""``vlmkit export --format hf``: transformers loads the directory with its own classes, with parity.

The VLM is LLaVA-shaped (a CLIP ViT, the MLP projector, a GQA Llama decoder) and briefly fine-tuned, so
its weights are no longer at initialisation; the exported directory gives transformers' logits equal to
vlmkit's, its processor the same pixels and prompt, and reads back into vlmkit bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tiny_vlm import tiny_chat_tokenizer, tiny_decoder_config
from vlmkit.checkpoints import from_pretrained
from vlmkit.checkpoints.export import export_hf
from vlmkit.cli import main
from vlmkit.config import ProjectorConfig, VisionConfig, VlmConfig
from vlmkit.errors import ConfigError
from vlmkit.models import Decoder, VisionLanguageModel
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.chat import render, template_named
from vlmkit.processing.images import ImagePreprocessor
from vlmkit.tasks.chat import chat_encoder

transformers = pytest.importorskip("transformers")
TOL = 1e-4


def _llava_shaped(pixel_shuffle: int = 1) -> VisionLanguageModel:
    tokenizer = tiny_chat_tokenizer()
    config = VlmConfig(
        vision=VisionConfig(image_size=32, patch_size=8, width=32, layers=2, heads=4, mlp_dim=64),
        projector=ProjectorConfig(pixel_shuffle=pixel_shuffle),
        decoder=tiny_decoder_config(tokenizer, tie_embeddings=False),
        image_token_id=tokenizer.tokenizer.token_to_id("<image>"),
    )
    torch.manual_seed(0)
    model = VisionLanguageModel(config)
    model.tokenizer, model.image_processor = tokenizer, ImagePreprocessor.clip(32)
    return model


def _fine_tune(model: VisionLanguageModel, steps: int = 3) -> VisionLanguageModel:
    encoded = chat_encoder(model).encode(
        [{"role": "user", "content": "<image>\nwhat colour is it?"}, {"role": "assistant", "content": "red"}]
    )
    ids, labels = torch.tensor([encoded.input_ids]), torch.tensor([encoded.labels])
    pixels = torch.randn(1, 3, 32, 32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(ids, pixels).logits[0, :-1], labels[0, 1:], ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def _image():
    return Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 48, 3), dtype=np.uint8))


def test_exported_llava_loads_in_transformers_with_parity(tmp_path):
    model = _fine_tune(_llava_shaped())
    out = export_hf(model, tmp_path / "hf")
    hf = transformers.LlavaForConditionalGeneration.from_pretrained(out).eval()
    messages = [{"role": "user", "content": "<image>\nwhat colour is it?"}]
    ids = torch.tensor([chat_encoder(model).encode(messages, add_generation_prompt=True).input_ids])
    pixels = model.image_processor([_image()])
    with torch.no_grad():
        torch.testing.assert_close(hf(input_ids=ids, pixel_values=pixels).logits, model(ids, pixels).logits, atol=TOL,
                                   rtol=0)  # fmt: skip
        expected = hf.generate(input_ids=ids, pixel_values=pixels, max_new_tokens=6, do_sample=False)[0, ids.shape[1] :]
        got = model.generate(ids.tolist(), pixels, GenerationConfig(max_new_tokens=6))[0]
    eos = model.config.decoder.eos_token_ids[0]
    expected = expected.tolist()
    assert got == expected[: expected.index(eos)] if eos in expected else got == expected  # vlmkit drops the EOS

    processor = transformers.AutoProcessor.from_pretrained(out)
    hf_messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "\nwhat colour is it?"}]}]
    text = processor.apply_chat_template(hf_messages, add_generation_prompt=True)
    assert text == "<bos>" + render(messages, template_named("vlmkit"))
    inputs = processor(images=[_image()], text=text, return_tensors="pt")
    torch.testing.assert_close(inputs["pixel_values"], pixels, atol=1e-5, rtol=0)
    assert inputs["input_ids"][0].tolist().count(model.config.image_token_id) == model.tokens_per_image

    back = from_pretrained(out)
    assert all(torch.equal(back.state_dict()[k], v) for k, v in model.state_dict().items())


def test_exported_decoder_is_a_llama(tmp_path):
    tokenizer = tiny_chat_tokenizer()
    torch.manual_seed(0)
    decoder = Decoder(tiny_decoder_config(tokenizer, rope_theta=500.0)).eval()
    for param in decoder.parameters():
        param.data.add_(torch.randn_like(param) * 0.05)
    decoder.tokenizer = tokenizer
    hf = transformers.AutoModelForCausalLM.from_pretrained(export_hf(decoder, tmp_path)).eval()
    ids = torch.randint(3, tokenizer.vocab_size, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(hf(input_ids=ids).logits, decoder(ids), atol=TOL, rtol=0)


def test_what_transformers_cannot_express_is_named(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"LLaVA: projector\.pixel_shuffle is 2 \(transformers would read 1\)"):
        export_hf(_llava_shaped(pixel_shuffle=2), tmp_path / "no")
    assert not (tmp_path / "no" / "config.json").exists()
    from vlmkit.checkpoints import save_pretrained

    save_pretrained(_llava_shaped(pixel_shuffle=2), tmp_path / "shuffled")
    assert main(["export", str(tmp_path / "shuffled"), "--out", str(tmp_path / "cli")]) == 2
    assert "pixel_shuffle" in capsys.readouterr().err


def test_a_hub_tokenizer_without_a_length_takes_the_decoders_context(tmp_path):
    import json

    tokenizer = tiny_chat_tokenizer()
    decoder = Decoder(tiny_decoder_config(tokenizer, max_positions=96)).eval()
    decoder.tokenizer = tokenizer
    out = export_hf(decoder, tmp_path)
    settings = json.loads((out / "tokenizer_config.json").read_text())
    settings["model_max_length"] = 1e30  # what transformers writes for "no limit"
    (out / "tokenizer_config.json").write_text(json.dumps(settings))
    assert from_pretrained(out).tokenizer.max_length == 96
