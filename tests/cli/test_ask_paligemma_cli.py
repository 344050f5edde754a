"""``vlmkit ask IMAGE "detect star" --model DIR`` on a Hugging Face PaliGemma directory answers exactly what
transformers generates from PaliGemmaProcessor's inputs for the same image and prefix."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from paligemma_kit import hf_paligemma, save_tiny_processor
from vlmkit.cli import main


def test_ask_matches_transformers_generate(tmp_path, capsys):
    hf = hf_paligemma()
    hf.save_pretrained(tmp_path)
    processor = save_tiny_processor(tmp_path)
    image = tmp_path / "shapes.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(image)
    inputs = processor(images=Image.open(image), text="detect star", return_tensors="pt")
    with torch.no_grad():
        ids = hf.generate(**inputs, max_new_tokens=8, do_sample=False)[0, inputs["input_ids"].shape[1] :]
    expected = processor.tokenizer.decode(ids, skip_special_tokens=True)

    assert main(["ask", str(image), "detect star", "--model", str(tmp_path), "--max-new-tokens", "8"]) == 0
    answer = capsys.readouterr().out.removesuffix("\n")
    assert answer == expected
    assert "<loc" in answer  # the tiny model's vocabulary is mostly the processor's location tokens
