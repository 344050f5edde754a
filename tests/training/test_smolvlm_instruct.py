"""``vlmkit train instruct --from DIR`` fine-tunes a transformers-saved tiny SmolVLM on ShapesWorld, fully or
through LoRA adapters (merged on export), with or without image splitting.

A processor that does not split (``do_image_splitting`` false) makes every image one fixed-size crop, so the data
path and the frozen tower's token cache serve it. A splitting one cuts each image into tiles plus a global view,
whose count follows the image's size: those images are processed batch by batch (``ProcessedChatBatches``), each
conversation laid out for its own image's tiles, the crops zero-padded and marked by ``pixel_attention_mask`` as
transformers' processor gives a batch. Either way the loss falls, and the result loads, answers, and exports back to
transformers with the same logits.
"""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from PIL import Image

import vlmkit
from idefics3_kit import IMAGE, hf_idefics3, save_tiny_processor
from testkit import noise_image
from vlmkit.cli import main
from vlmkit.data.records import RecordDataset
from vlmkit.errors import ConfigError
from vlmkit.models.generation import GenerationConfig
from vlmkit.processing.image_splitting import SplitImagePreprocessor
from vlmkit.processing.jinja_chat import content_parts
from vlmkit.tasks.chat import ask
from vlmkit.training.recipes.chat import ProcessedChatBatches


def _smolvlm(directory, splitting: bool):
    torch.manual_seed(0)
    hf_idefics3("smolvlm").save_pretrained(directory)
    save_tiny_processor(directory, "smolvlm", splitting=splitting)
    return directory


@pytest.mark.parametrize(
    ("splitting", "flags", "falls_to"),
    [(False, [], 0.6), (False, ["--lora-rank", "4"], 0.85), (True, [], 0.6), (True, ["--lora-rank", "4"], 0.85)],
    ids=["full", "lora", "split-full", "split-lora"],
)
def test_instruct_fine_tunes_a_smolvlm(shapes_dataset, tmp_path, capsys, splitting, flags, falls_to):
    source = _smolvlm(tmp_path / "smolvlm", splitting=splitting)
    out = tmp_path / "run"
    argv = ["train", "instruct", "--from", str(source), "--data", str(shapes_dataset / "train"), "--out", str(out)]
    argv += ["--steps", "16", "--batch-size", "8", "--lr", "3e-3", "--warmup-steps", "0", "--log-every", "2", *flags]
    assert main(argv) == 0, capsys.readouterr().err
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines() if "loss" in line]
    assert len(losses) == 8 and losses[-1] < falls_to * losses[0], losses
    model = vlmkit.load(out / "model")
    assert model.config.image_splitting and isinstance(model.image_processor, SplitImagePreprocessor)
    assert model.image_processor.splitting == splitting
    image = shapes_dataset / "train" / RecordDataset(shapes_dataset / "train").records[0].image
    assert isinstance(ask(model, str(image), "what is this ?", GenerationConfig(max_new_tokens=3)), str)
    # The fine-tuned model exported back to transformers: its own classes load it, with the same logits.
    assert main(["export", str(out / "model"), "--format", "hf", "--out", str(tmp_path / "hf")]) == 0
    hf = transformers.Idefics3ForConditionalGeneration.from_pretrained(tmp_path / "hf").eval()
    processor = transformers.Idefics3Processor.from_pretrained(tmp_path / "hf")
    text = "User:<image>what is this ?<end_of_utterance>\nAssistant:"
    inputs = processor(text=[text], images=[[Image.open(image)]], return_tensors="pt")
    assert inputs["pixel_values"].shape[1] == (10 if splitting else 1)  # 32 px -> 96 px: 3 x 3 tiles + global view
    with torch.no_grad():
        torch.testing.assert_close(hf(**inputs).logits, model(**inputs).logits, atol=1e-4, rtol=0)


def test_the_fixed_size_data_path_refuses_a_splitting_processor(tmp_path):
    model = vlmkit.load(_smolvlm(tmp_path, splitting=True))
    with pytest.raises(ConfigError, match="do_image_splitting false"):
        model.image_processor.to_uint8([tmp_path / "none.png"])


def test_a_split_batch_is_what_transformers_processor_gives(shapes_dataset, tmp_path):
    """Two images of other sizes (7 and 10 crops): each row's ids are the processor's for its own image's tiles, the
    crops and pixel_attention_mask are the processor's for the pair (zero-padded to 10 crops), and the labels start
    with the answer and the end of the turn."""
    source = _smolvlm(tmp_path / "smolvlm", splitting=True)
    processor = save_tiny_processor(tmp_path / "again", "smolvlm", splitting=True)
    model = vlmkit.load(source)
    paths = [tmp_path / "wide.png", tmp_path / "square.png"]
    noise_image(90, 40).save(paths[0])  # 96 x 43 -> 2 x 3 tiles
    noise_image(32, 32).save(paths[1])  # 96 x 96 -> 3 x 3 tiles
    records = RecordDataset(shapes_dataset / "train").records[:2]
    chat = [{"role": "user", "content": "<image>\nwhat is this ?"}, {"role": "assistant", "content": "a red star"}]
    batches = ProcessedChatBatches(records, [str(p) for p in paths], model, lambda r, rng: chat, seed=0, max_length=512)
    batch = batches.batch(0, 0, 2, 0, 1)
    images = [[Image.open(paths[item])] for item in batches.draws.items(0, 0, 2, 0, 1)]
    messages = [{"role": m["role"], "content": content_parts(m["content"])} for m in chat]
    text = processor.apply_chat_template(messages, tokenize=False)
    expected = processor(text=[text, text], images=images, return_tensors="pt", padding=True, padding_side="right")
    assert torch.equal(batch.input_ids, expected["input_ids"])
    assert sorted(row.count(IMAGE) for row in batch.input_ids.tolist()) == [28, 40]  # 4 tokens a crop
    assert batch.pixels.shape == expected["pixel_values"].shape == (2, 10, 3, 32, 32)
    torch.testing.assert_close(batch.pixels, expected["pixel_values"], atol=1e-5, rtol=0)
    assert torch.equal(batch.pixel_attention_mask.bool(), expected["pixel_attention_mask"].bool())
    answer = processor.tokenizer("a red star<end_of_utterance>", add_special_tokens=False)["input_ids"]
    assert [token for token in batch.labels[0].tolist() if token != -100][: len(answer)] == answer
