"""``vlmkit train instruct --from DIR`` fine-tunes a transformers-saved tiny SmolVLM on ShapesWorld, fully or
through LoRA adapters (merged on export).

Training keeps one fixed-size crop per image, so the checkpoint's processor must not split images
(``do_image_splitting`` false); then every image has the same prompt layout and the data path, the frozen
tower's token cache and the chat encoder work unchanged. The loss falls, and the result loads, answers,
and exports back to transformers with the same logits.
A splitting processor is refused in one line.
"""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from PIL import Image

import vlmkit
from idefics3_kit import hf_idefics3, save_tiny_processor
from vlmkit.cli import main
from vlmkit.data.records import RecordDataset
from vlmkit.errors import ConfigError
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.image_splitting import SplitImagePreprocessor
from vlmkit.tasks.chat import ask


def _smolvlm(directory, splitting: bool):
    torch.manual_seed(0)
    hf_idefics3("smolvlm").save_pretrained(directory)
    save_tiny_processor(directory, "smolvlm", splitting=splitting)
    return directory


@pytest.mark.parametrize(("flags", "falls_to"), [([], 0.6), (["--lora-rank", "4"], 0.85)], ids=["full", "lora"])
def test_instruct_fine_tunes_a_smolvlm(shapes_dataset, tmp_path, capsys, flags, falls_to):
    source = _smolvlm(tmp_path / "smolvlm", splitting=False)
    out = tmp_path / "run"
    argv = ["train", "instruct", "--from", str(source), "--data", str(shapes_dataset / "train"), "--out", str(out)]
    argv += ["--steps", "16", "--batch-size", "8", "--lr", "3e-3", "--warmup-steps", "0", "--log-every", "2", *flags]
    assert main(argv) == 0, capsys.readouterr().err
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines() if "loss" in line]
    assert len(losses) == 8 and losses[-1] < falls_to * losses[0], losses
    model = vlmkit.load(out / "model")
    assert model.config.image_splitting and isinstance(model.image_processor, SplitImagePreprocessor)
    image = shapes_dataset / "train" / RecordDataset(shapes_dataset / "train").records[0].image
    assert isinstance(ask(model, str(image), "what is this ?", GenerationConfig(max_new_tokens=3)), str)
    # The fine-tuned model exported back to transformers: its own classes load it, with the same logits.
    assert main(["export", str(out / "model"), "--format", "hf", "--out", str(tmp_path / "hf")]) == 0
    hf = transformers.Idefics3ForConditionalGeneration.from_pretrained(tmp_path / "hf").eval()
    processor = transformers.Idefics3Processor.from_pretrained(tmp_path / "hf")
    text = "User:<image>what is this ?<end_of_utterance>\nAssistant:"
    inputs = processor(text=[text], images=[[Image.open(image)]], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(hf(**inputs).logits, model(**inputs).logits, atol=1e-4, rtol=0)


def test_a_splitting_processor_is_refused_for_training(tmp_path):
    model = vlmkit.load(_smolvlm(tmp_path, splitting=True))
    with pytest.raises(ConfigError, match="do_image_splitting false"):
        model.image_processor.to_uint8([tmp_path / "none.png"])
