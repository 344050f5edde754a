"""Generation speed of Qwen2-VL: vlmkit vs transformers ``generate`` on the same random model.

The model: a Qwen2-VL-shaped tower (width 384, 6 blocks, 14 px patches merged 2x2; Qwen2.5-VL's with
``--family qwen2_5_vl``: RMSNorm, SwiGLU, 112 px windows, full attention in blocks 2 and 5) and ``generate.py``'s
25M decoder as Qwen2 (q/k/v biases, M-RoPE sections 8, 12, 12). Every prompt holds one 224 x 224 image (a 16 x 16
patch grid, 64 pad tokens between ``<|vision_start|>`` and ``<|vision_end|>``) and random text, left-padded at
batch 8. vlmkit loads the transformers checkpoint through its key map, so the weights are identical; both decode
greedily for exactly ``--new-tokens`` tokens (EOS disabled), timed interleaved in one run. Columns: tokens/s of
each, their ratio, the share of identical generations, and at batch 1 vlmkit's share of the memory-bandwidth
bound of its decoder (as in ``generate.py``).

    .venv/bin/python benchmarks/qwen2_vl_generate.py [--family qwen2_vl] [--new-tokens 64] [--repeats 3]
        [--threads N] [--clock cpu]
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
    llama_config,
    load_pair,
)
from vlmkit.models.generation import GenerationConfig, pad_left

IMAGE, VIDEO, START, END = 8000, 8001, 8002, 8003
SIDE, PATCH, MERGE, PROMPT = 224, 14, 2, 32


def qwen(family: str) -> torch.nn.Module:
    text = llama_config("25m").to_dict()
    text = {k: text[k] for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers")}
    text |= dict(num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=2048)
    text |= dict(bos_token_id=1, eos_token_id=2, pad_token_id=0)
    text |= dict(rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [8, 12, 12]})
    ids = dict(image_token_id=IMAGE, video_token_id=VIDEO, vision_start_token_id=START, vision_end_token_id=END)
    shape = dict(depth=6, num_heads=6, patch_size=PATCH, spatial_merge_size=MERGE, temporal_patch_size=2)
    if family == "qwen2_vl":
        vision = dict(embed_dim=384, hidden_size=512, mlp_ratio=4, **shape)
        config = transformers.Qwen2VLConfig(vision_config=vision, text_config=text, **ids)
        return transformers.Qwen2VLForConditionalGeneration(config)
    vision = dict(hidden_size=384, intermediate_size=1024, out_hidden_size=512, window_size=112, **shape)
    config = transformers.Qwen2_5_VLConfig(
        vision_config=dict(vision, fullatt_block_indexes=[2, 5]), text_config=text, **ids
    )
    return transformers.Qwen2_5_VLForConditionalGeneration(config)


def bench(hf, ours, batch: int, new_tokens: int, repeats: int, bandwidth: float, clock) -> str:
    grid = SIDE // PATCH
    image = [START, *[IMAGE] * (grid * grid // MERGE**2), END]
    rows = [
        [*torch.randint(3, 7800, (8,)).tolist(), *image, *torch.randint(3, 7800, (PROMPT - (row % 4) * 4,)).tolist()]
        for row in range(batch)
    ]
    ids, mask = pad_left(rows, 0)
    pixels = torch.randn(batch * grid * grid, 3 * 2 * PATCH * PATCH)
    grids = torch.tensor([[1, grid, grid]] * batch)
    types = (ids == IMAGE).long()
    config = GenerationConfig(max_new_tokens=new_tokens, eos_token_ids=())

    def run_ours() -> list[list[int]]:
        return ours.generate(rows, config, pixel_values=pixels, image_grid_thw=grids)

    hf_inputs = {"input_ids": ids, "attention_mask": mask, "pixel_values": pixels, "image_grid_thw": grids}
    hf_inputs["mm_token_type_ids"] = types
    return family_row(ours.decoder, run_ours, hf, hf_inputs, new_tokens, repeats, bandwidth, clock)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("qwen2_vl", "qwen2_5_vl"), default="qwen2_vl")
    family_race_arguments(parser)
    args = parser.parse_args()
    clock, bandwidth = family_race_setup(args)
    print(family_header(args, bandwidth, f"{args.family}: ~{PROMPT} text tokens + one {SIDE} px image"))
    hf = qwen(args.family)
    ours = load_pair(hf)
    family_table(lambda batch: bench(hf, ours, batch, args.new_tokens, args.repeats, bandwidth, clock), args.batches)


if __name__ == "__main__":
    main()
