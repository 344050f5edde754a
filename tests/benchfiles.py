"""Benchmark files written the way their publishers write them, for the bench tests."""

from __future__ import annotations

import base64
import csv
import io
from pathlib import Path

from PIL import Image


def png(color: tuple[int, int, int], size: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def write_tsv(path: Path, rows: list[dict[str, object]]) -> Path:
    """A VLMEvalKit TSV: tab-separated, a header of every column, missing cells empty (as pandas writes NaN)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    return path


def letter_vlm(letters: str = "ABCD"):
    """A tiny random VLM whose output head can only say option letters or stop: its answers are letters that vary
    with image and prompt, so comparisons of multiple-choice scores between two harnesses are not all zeros."""
    import torch

    from tiny_vlm import tiny_chat_tokenizer, tiny_decoder_config
    from vlmkit.config import ProjectorConfig, VisionConfig, VlmConfig
    from vlmkit.models import VisionLanguageModel
    from vlmkit.processing.images import ImagePreprocessor

    tokenizer = tiny_chat_tokenizer()
    config = VlmConfig(
        vision=VisionConfig(image_size=32, patch_size=8, width=32, layers=2, heads=4, mlp_dim=64, act="gelu"),
        projector=ProjectorConfig(pixel_shuffle=2),
        decoder=tiny_decoder_config(tokenizer, tie_embeddings=False, max_positions=512),
        image_token_id=tokenizer.tokenizer.token_to_id("<image>"),
    )
    model = VisionLanguageModel(config).eval()
    model.tokenizer, model.image_processor = tokenizer, ImagePreprocessor.clip(32)
    speakable = [tokenizer.tokenizer.token_to_id(letter) for letter in letters] + [tokenizer.eos_id]
    with torch.no_grad():
        head = model.decoder.lm_head.weight
        kept = head[speakable].clone()
        head.zero_()
        head[speakable] = kept * 20
    return model
