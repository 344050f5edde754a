"""Generation speed of an anyres-tiling VLM: vlmkit vs transformers ``generate`` on the same random LLaVA-NeXT.

The model: ``generate.py``'s tiny LLaVA (CLIP ViT-S/16-ish at 224 px, 196 tokens a view, and its 25M Llama
decoder) as LLaVA-NeXT, tiling at 224x448, 448x224 or 448x448 (three of the hub checkpoints' ``image_grid_pinpoints``
scaled to 224 px tiles). Every prompt holds one 336 x 672 image (height x width), so transformers and vlmkit
both pick the 224x448 grid: its base view plus two tiles, 602 image tokens (196 + a 14 x 28 feature grid with
a newline ending each row, laid out by ``vlmkit.processing.anyres``), and random text, left-padded at batch 8.
vlmkit loads the transformers checkpoint through its key map, so the weights are identical; both decode greedily
for exactly ``--new-tokens`` tokens (EOS disabled), timed interleaved in one run. Columns as in ``generate.py``:
tokens/s of each, their ratio, the share of identical generations, and at batch 1 vlmkit's share of the
memory-bandwidth bound of its decoder.

    .venv/bin/python benchmarks/llava_next_generate.py [--new-tokens 64] [--repeats 3] [--threads N] [--clock cpu]
"""

from __future__ import annotations

import argparse

import torch
import transformers

from generate import (
    family_header,
    family_race_arguments,
    family_race_setup,
    family_row,
    family_table,
    llava_config,
    load_pair,
)
from vlmkit.models.generation import GenerationConfig, pad_left
from vlmkit.processing.anyres import expand_image_tokens

TILE, IMAGE_SIZE, PROMPT = 224, (336, 672), 32
PINPOINTS = [[TILE, 2 * TILE], [2 * TILE, TILE], [2 * TILE, 2 * TILE]]


def llava_next() -> transformers.LlavaNextForConditionalGeneration:
    """``generate.py``'s LLaVA shape with anyres tiling; the hub's "default" strategy (the class token dropped)."""
    llava = llava_config()
    config = transformers.LlavaNextConfig(
        vision_config=llava.vision_config,
        text_config=llava.text_config,
        image_token_index=llava.image_token_index,
        image_grid_pinpoints=PINPOINTS,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        tie_word_embeddings=True,  # LlavaNextConfig's own default (False) would untie the text config's tied head
    )
    return transformers.LlavaNextForConditionalGeneration(config)


def bench(hf, ours, batch: int, new_tokens: int, repeats: int, bandwidth: float, clock) -> str:
    image_id = ours.config.image_token_id
    count = ours.image_tokens(IMAGE_SIZE)
    rows = []
    for row in range(batch):
        text = torch.randint(3, 7800, (PROMPT - (row % 4) * 4,)).tolist()
        rows.append(expand_image_tokens([1, image_id, *text], image_id, [count]))
    ids, mask = pad_left(rows, 0)
    crops = 1 + 2  # the base view and the 224x448 grid's two tiles
    pixels = torch.randn(batch, crops, 3, TILE, TILE)
    sizes = torch.tensor([IMAGE_SIZE] * batch)
    config = GenerationConfig(max_new_tokens=new_tokens, eos_token_ids=())

    def run_ours() -> list[list[int]]:
        return ours.generate(rows, pixels, config, image_sizes=sizes)

    hf_inputs = {"input_ids": ids, "attention_mask": mask, "pixel_values": pixels, "image_sizes": sizes}
    return family_row(ours.decoder, run_ours, hf, hf_inputs, new_tokens, repeats, bandwidth, clock)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    family_race_arguments(parser)
    args = parser.parse_args()
    clock, bandwidth = family_race_setup(args)
    hf = llava_next()
    ours = load_pair(hf)
    image = f"{IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} image ({ours.image_tokens(IMAGE_SIZE)} tokens)"
    print(family_header(args, bandwidth, f"{PROMPT} text tokens + one {image}"))
    family_table(lambda batch: bench(hf, ours, batch, args.new_tokens, args.repeats, bandwidth, clock), args.batches)


if __name__ == "__main__":
    main()
