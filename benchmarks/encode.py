"""Image and text embedding throughput: vlmkit vs transformers on the same random ViT-B/32 CLIP.

Both models hold identical weights (vlmkit loads the transformers checkpoint through its key map),
run under ``inference_mode`` on the same inputs, in float32 and bfloat16, timed interleaved in one
run. Prints throughput ratios, achieved GFLOP/s against this machine's matmul peak, and the cosine
of bfloat16 embeddings to float32 ones.

    .venv/bin/python benchmarks/encode.py [--image-batch 32] [--text-batch 64] [--repeats 5] [--device cuda]
"""

from __future__ import annotations

import argparse
import tempfile

import torch
import transformers

import vlmkit
from common import interleaved_medians, matmul_peak_gflops


def vit_gflop(tokens: int, width: int, layers: int, mlp: int, patch_flops: float = 0.0) -> float:
    """Forward GFLOP of one sequence through a pre-LN transformer (matmuls only; 2 FLOP per MAC)."""
    per_layer = 2 * tokens * width * (4 * width + 2 * mlp) + 4 * tokens * tokens * width
    return (layers * per_layer + patch_flops) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-batch", type=int, default=32)
    parser.add_argument("--text-batch", type=int, default=64)
    parser.add_argument("--text-length", type=int, default=20, help="tokens per text before padding")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    device = args.device
    torch.manual_seed(0)
    hf = transformers.CLIPModel(transformers.CLIPConfig()).eval()  # defaults: ViT-B/32
    with tempfile.TemporaryDirectory() as tmp:
        hf.save_pretrained(tmp)
        ours = vlmkit.load(tmp)
    pixels = torch.randn(args.image_batch, 3, 224, 224, device=device)
    ids = torch.randint(1, 49000, (args.text_batch, args.text_length), device=device)
    ids[:, -1] = 49407
    mask = torch.ones_like(ids)
    vision, text = ours.config.vision, ours.config.text
    image_gflop = vit_gflop(
        vision.num_tokens,
        vision.width,
        vision.layers,
        vision.mlp_dim,
        patch_flops=2 * vision.grid**2 * vision.width * 3 * vision.patch_size**2,
    )
    text_gflop = vit_gflop(args.text_length, text.width, text.layers, text.mlp_dim)
    where = torch.cuda.get_device_name() if device == "cuda" else f"{torch.get_num_threads()} threads"
    print(
        f"torch {torch.__version__}, {where}; image batch {args.image_batch}, "
        f"text batch {args.text_batch} x {args.text_length} tokens"
    )
    reference: dict[str, torch.Tensor] = {}
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        hf.to(device, dtype)
        ours.to(device, dtype)
        peak = matmul_peak_gflops(dtype, device=device)
        px = pixels.to(dtype)
        with torch.inference_mode():
            image_embeds = ours.encode_image(px).float()
            text_embeds = ours.encode_text(ids, mask).float()
            times = interleaved_medians(
                {
                    "vlmkit image": lambda px=px: ours.encode_image(px),
                    "transformers image": lambda px=px: hf.get_image_features(pixel_values=px),
                    "vlmkit text": lambda: ours.encode_text(ids, mask),
                    "transformers text": lambda: hf.get_text_features(input_ids=ids, attention_mask=mask),
                },
                repeats=args.repeats,
            )
        if dtype == torch.float32:
            reference = {"image": image_embeds, "text": text_embeds}
        cos_image = torch.nn.functional.cosine_similarity(image_embeds, reference["image"]).min().item()
        cos_text = torch.nn.functional.cosine_similarity(text_embeds, reference["text"]).min().item()
        name = str(dtype).removeprefix("torch.")
        for kind, batch, gflop, cos in (
            ("image", args.image_batch, image_gflop, cos_image),
            ("text", args.text_batch, text_gflop, cos_text),
        ):
            ours_rate = batch / times[f"vlmkit {kind}"]
            hf_rate = batch / times[f"transformers {kind}"]
            rows.append((name, kind, ours_rate, hf_rate, ours_rate / hf_rate, ours_rate * gflop, peak, cos))
    fp32 = {(r[1]): r[2] for r in rows if r[0] == "float32"}
    print(
        f"{'dtype':9} {'tower':6} {'vlmkit/s':>9} {'hf/s':>9} {'ratio':>6} {'GFLOP/s':>8} {'peak':>7} "
        f"{'%peak':>6} {'vs fp32':>7} {'min cos':>8}"
    )
    for name, kind, ours_rate, hf_rate, ratio, gflops, peak, cos in rows:
        print(
            f"{name:9} {kind:6} {ours_rate:9.1f} {hf_rate:9.1f} {ratio:5.2f}x {gflops:8.1f} {peak:7.1f} "
            f"{100 * gflops / peak:5.1f}% {ours_rate / fp32[kind]:6.2f}x {cos:8.5f}"
        )


if __name__ == "__main__":
    main()
