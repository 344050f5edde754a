"""The two backends on one tiny random LLaVA checkpoint (transformers' own, with its processor): the same
predictions, one by one and batched, through the whole ``vlmkit bench`` command."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from tokenizers import processors

from benchfiles import b64, png, write_tsv
from tiny_vlm import tiny_chat_tokenizer
from vlmkit.cli import main

# the llava-1.5 checkpoints' template ("USER: <image>\n{text} ASSISTANT:"), the BOS written by the template
LLAVA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ message['role'].upper() + ': ' }}"
    "{% for item in message['content'] if item['type'] == 'image' %}{{ '<image>\n' }}{% endfor %}"
    "{% for item in message['content'] if item['type'] == 'text' %}{{ item['text'] + ' ' }}{% endfor %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


def _llava_dir(path):
    vlmkit_tokenizer = tiny_chat_tokenizer()
    raw = vlmkit_tokenizer.tokenizer
    bos, eos, pad = vlmkit_tokenizer.bos_id, vlmkit_tokenizer.eos_id, vlmkit_tokenizer.pad_id
    raw.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", bos)])
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
        add_bos_token=True, clean_up_tokenization_spaces=False, model_max_length=256,
    )  # fmt: skip
    image_processor = transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size=32)
    processor = transformers.LlavaProcessor(
        image_processor, tokenizer, patch_size=8, vision_feature_select_strategy="default",
        chat_template=LLAVA_TEMPLATE, num_additional_image_tokens=1,
    )  # fmt: skip
    vision = transformers.CLIPVisionConfig(
        hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=8
    )
    text = transformers.LlamaConfig(
        vocab_size=vlmkit_tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        bos_token_id=bos, eos_token_id=eos, pad_token_id=pad,
    )  # fmt: skip
    config = transformers.LlavaConfig(
        vision_config=vision, text_config=text, image_token_index=raw.token_to_id("<image>"),
        vision_feature_select_strategy="default", vision_feature_layer=-2,
    )  # fmt: skip
    model = transformers.LlavaForConditionalGeneration(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.1)  # decisive logits: argmax not left to rounding
    model.generation_config.eos_token_id, model.generation_config.pad_token_id = eos, pad
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def _pope_file(tmp_path):
    colors = [(250, 20, 20), (20, 250, 20), (20, 20, 250), (240, 240, 30)]
    rows = [
        {"index": i, "question": f"Is there a {name} in the image?", "answer": "yes" if i % 2 else "no",
         "category": "random" if i < 3 else "adversarial", "image": b64(png(colors[i % 4], 40))}
        for i, name in enumerate(["dog", "cat", "car", "tree", "person"])
    ]  # fmt: skip
    return write_tsv(tmp_path / "pope.tsv", rows)


def _mmmu_file(tmp_path):
    """Several images in one prompt, placed by MMMU's markers, and an open question."""
    (tmp_path / "a.png").write_bytes(png((200, 0, 0), 40))
    (tmp_path / "b.png").write_bytes(png((0, 0, 200), 32))
    records = [
        {"id": "v1", "question": "Compare <image 1> and <image 2>.", "options": "['same', 'different']",
         "answer": "B", "question_type": "multiple-choice", "image_1": "a.png", "image_2": "b.png"},
        {"id": "v2", "question": "How many?", "answer": "2", "question_type": "open", "image_1": "b.png"},
    ]  # fmt: skip
    (tmp_path / "mmmu.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return tmp_path / "mmmu.jsonl"


@pytest.mark.parametrize(("task", "batch_size"), [("pope", 1), ("pope", 3), ("mmmu", 2)])
def test_vlmkit_and_transformers_backends_give_the_same_predictions(tmp_path, capsys, task, batch_size):
    model = _llava_dir(tmp_path / "llava")
    data = _pope_file(tmp_path) if task == "pope" else _mmmu_file(tmp_path)
    predictions = {}
    for backend in ("vlmkit", "transformers"):
        out = tmp_path / backend
        argv = ["bench", "--task", task, "--data", str(data), "--model", str(model), "--backend", backend]
        assert main([*argv, "--out", str(out), "--max-new-tokens", "6", "--batch-size", str(batch_size)]) == 0
        lines = (out / task / "predictions.jsonl").read_text().splitlines()
        predictions[backend] = [json.loads(line) for line in lines]
    capsys.readouterr()
    assert predictions["vlmkit"] == predictions["transformers"]
    assert len({p["prediction"] for p in predictions["vlmkit"]}) > 1


def test_a_directory_transformers_cannot_load_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    argv = [
        "bench",
        "--task",
        "pope",
        "--data",
        "x.tsv",
        "--model",
        str(tmp_path / "empty"),
        "--backend",
        "transformers",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "transformers cannot load it" in err and err.count("\n") == 1
