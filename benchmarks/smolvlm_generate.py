"""Generation speed of an image-splitting VLM: vlmkit vs transformers ``generate`` on the same random SmolVLM.

The model: a SmolVLM-shaped tower (width 384, 6 blocks, 256 px crops of 16 px patches, pixel shuffle 4, so
16 tokens a crop) and ``generate.py``'s 25M Llama decoder. Every prompt holds one image split 2 x 2 plus its
global view (5 crops, 80 image tokens between the markers, laid out by ``vlmkit.processing.image_splitting``)
and random text, left-padded at batch 8. vlmkit loads the transformers checkpoint through its key map, so
the weights are identical; both decode greedily for exactly ``--new-tokens`` tokens (EOS disabled), timed
interleaved in one run. Columns as in ``generate.py``: tokens/s of each, their ratio, the share of identical
generations, and at batch 1 vlmkit's share of the memory-bandwidth bound of its decoder.

    .venv/bin/python benchmarks/smolvlm_generate.py [--new-tokens 64] [--repeats 3] [--threads N] [--clock cpu]
"""

from __future__ import annotations

import argparse
import re

import torch
import transformers

from generate import (
    family_header,
    family_race_arguments,
    family_race_setup,
    family_row,
    family_table,
    llama_config,
    load_pair,
)
from vlmkit.models.generation import GenerationConfig, pad_left
from vlmkit.processing.image_splitting import image_prompt

IMAGE, FAKE, GLOBAL, NEWLINE, FIRST_ROW_COL = 8000, 8001, 8002, 10, 8003
TILE, ROWS, COLS, PROMPT = 256, 2, 2, 32


def smolvlm() -> transformers.SmolVLMForConditionalGeneration:
    vision = transformers.SmolVLMVisionConfig(
        hidden_size=384,
        intermediate_size=1536,
        num_hidden_layers=6,
        num_attention_heads=6,
        image_size=TILE,
        patch_size=16,
    )
    config = transformers.SmolVLMConfig(
        vision_config=vision, text_config=llama_config("25m"), image_token_id=IMAGE, scale_factor=4
    )
    return transformers.SmolVLMForConditionalGeneration(config)


def layout_ids(tokens_per_crop: int) -> list[int]:
    """The split image's prompt (vlmkit's layout text), each marker mapped to this benchmark's ids."""
    names = {"<image>": IMAGE, "<fake_token_around_image>": FAKE, "<global-img>": GLOBAL, "\n": NEWLINE}
    names |= {f"<row_{r}_col_{c}>": FIRST_ROW_COL + 6 * (r - 1) + c - 1 for r in range(1, 7) for c in range(1, 7)}
    return [names[piece] for piece in re.findall(r"<[^>]+>|\n", image_prompt(ROWS, COLS, tokens_per_crop))]


def bench(hf, ours, batch: int, new_tokens: int, repeats: int, bandwidth: float, clock) -> str:
    image = layout_ids(ours.config.tokens_per_image)
    rows = []
    for row in range(batch):
        text = torch.randint(3, 7800, (PROMPT - (row % 4) * 4,)).tolist()
        rows.append([1, *image, *text])
    ids, mask = pad_left(rows, 0)
    pixels = torch.randn(batch, 1 + ROWS * COLS, 3, TILE, TILE)
    config = GenerationConfig(max_new_tokens=new_tokens, eos_token_ids=())

    def run_ours() -> list[list[int]]:
        return ours.generate(rows, pixels, config)

    hf_inputs = {"input_ids": ids, "attention_mask": mask, "pixel_values": pixels}
    return family_row(ours.decoder, run_ours, hf, hf_inputs, new_tokens, repeats, bandwidth, clock)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    family_race_arguments(parser)
    args = parser.parse_args()
    clock, bandwidth = family_race_setup(args)
    print(family_header(args, bandwidth, f"{PROMPT} text tokens + one image of {1 + ROWS * COLS} crops"))
    hf = smolvlm()
    ours = load_pair(hf)
    family_table(
        lambda batch: bench(hf, ours, batch, args.new_tokens, args.repeats, bandwidth, clock), args.batches, "smolvlm"
    )


if __name__ == "__main__":
    main()
